"""Per-target attribute mapping: which attributes a target receives, and under what names.

A mapping is configured as a JSON object from target attribute path to source expression::

    {
        "email": "emails[type eq \\"work\\"].value",
        "name.givenName": "name.givenName",
        "fullName": {"join": ["name.givenName", "name.familyName"], "sep": " "},
        "login": {"lower": "userName"},
        "mobile": {"coalesce": ["phoneNumbers[type eq \\"mobile\\"].value",
                                "phoneNumbers.value"]},
        "tier": {"default": "standard", "from": "userType"},
        "source": {"const": "entra"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
    }

Target paths are dotted (``name.givenName`` writes ``{"name": {"givenName": ...}}``),
optionally after a schema URN, which becomes one key. Source paths are SCIM attribute
paths (RFC 7644 §3.5.2 ``PATH``), validated against the resource type and resolved
case-insensitively (RFC 7643 §2.1). A multi-valued attribute gives its list; a value
filter gives one element, the primary one when several match (RFC 7643 §2.4). An
unassigned value (null, ``""``, ``[]`` or ``{}``, RFC 7643 §2.5) is *missing*, and a
target attribute whose expression is missing is left out. An empty or absent mapping is
the identity: the resource as stored, minus ``meta``. The expressions and their
evaluation are :mod:`bridge.targets.mapping_expressions`'.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.scim.attributes import Attribute
from bridge.scim.errors import ScimError
from bridge.scim.filter import And, Filter, Not, Or
from bridge.scim.filter_eval import is_present, matches_element
from bridge.scim.paths import delete_value, parse_patch_path
from bridge.scim.resource_types import ResourceType
from bridge.scim.resources import copy_document
from bridge.targets.mapping_expressions import (
    Case,
    Coalesce,
    Const,
    Default,
    Expr,
    Join,
    Source,
    sources,
)

MAX_DEPTH = 8
"""Deepest nesting of expressions accepted, so a hostile spec cannot exhaust the stack."""

DEFAULT_SEPARATOR = " "
"""What ``join`` puts between parts when the spec gives no ``sep``."""

_URN_TARGET = re.compile(r"^(?P<urn>urn:\S+):(?P<rest>[^:]+)$", re.IGNORECASE)
_SEGMENT = re.compile(r'^[^\s.:\[\]"]+$')


class MappingError(ValueError):
    """A mapping spec is malformed; the message names the offending key or expression."""


@dataclass(frozen=True)
class Rule:
    """One target attribute and the expression that fills it."""

    target: str
    """The target path as written in the spec."""
    keys: tuple[str, ...]
    """Where the value goes: ``("name", "givenName")``, or ``(urn, "department")``."""
    expr: Expr


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping; ``identity`` (with no rules) sends the resource as stored."""

    rules: tuple[Rule, ...]
    identity: bool

    def __post_init__(self) -> None:
        if self.identity == bool(self.rules):
            raise ValueError("a mapping is either the identity or has rules, not both or neither")

    def to_spec(self) -> dict[str, Any] | None:
        """The spec ``parse_mapping`` turns back into this mapping; None for the identity."""
        if self.identity:
            return None
        return {rule.target: rule.expr.to_spec() for rule in self.rules}


IDENTITY = Mapping(rules=(), identity=True)
"""Send the SCIM resource as is (without ``meta``)."""


def parse_mapping(spec: dict[str, Any] | None, rtype: ResourceType) -> Mapping:
    """Parse and validate a mapping spec for resources of ``rtype``; raise MappingError."""
    if spec is None:
        return IDENTITY
    if not isinstance(spec, dict):
        raise MappingError(f"a mapping must be a JSON object, not {_kind(spec)}")
    if not spec:
        return IDENTITY
    rules = []
    for target, expr in spec.items():
        where = f"mapping[{target!r}]"
        if not isinstance(target, str):
            raise MappingError(f"{where}: a target must be a string")
        rules.append(Rule(target, _parse_target(target, where), _parse_expr(expr, rtype, where)))
    _check_overlaps(rules)
    return Mapping(rules=tuple(rules), identity=False)


def apply_mapping(
    mapping: Mapping, resource: dict[str, Any], rtype: ResourceType
) -> dict[str, Any]:
    """The target's view of ``resource``: mapped attributes only, sharing nothing with it.

    The caller adds ``schemas``. ValueError if the mapping was parsed for another
    resource type.
    """
    if mapping.identity:
        out = copy_document(resource)
        delete_value(out, "meta")
        return out
    _check_resource_type(mapping, rtype)
    out = {}
    for rule in mapping.rules:
        value = rule.expr.evaluate(resource)
        if value is not None:
            _write(out, rule.keys, _copied(value))
    return out


def _copied(value: Any) -> Any:
    """A copy of a JSON value taken from a resource (strings and numbers are immutable), as
    :func:`copy_document` makes one."""
    return orjson.loads(orjson.dumps(value)) if isinstance(value, dict | list) else value


# --- Parsing ----------------------------------------------------------------------------

_FORMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "const": (frozenset(), frozenset()),
    "lower": (frozenset(), frozenset()),
    "upper": (frozenset(), frozenset()),
    "join": (frozenset(), frozenset({"sep"})),
    "coalesce": (frozenset(), frozenset()),
    "default": (frozenset({"from"}), frozenset()),
}
"""Each form's operator key: (other keys it requires, other keys it allows)."""


def _parse_target(text: str, where: str) -> tuple[str, ...]:
    """``a.b`` as ``("a", "b")``; ``urn:...:a.b`` as ``("urn:...", "a", "b")``."""
    m = _URN_TARGET.match(text)
    keys = (m["urn"], *m["rest"].split(".")) if m else tuple(text.split("."))
    names = keys[1:] if m else keys
    if not all(_SEGMENT.match(name) for name in names):
        raise MappingError(
            f"{where}: a target is a dotted attribute name, optionally after a schema URN "
            "(value filters and blanks are not allowed)"
        )
    return keys


def _check_overlaps(rules: list[Rule]) -> None:
    """No target may lie inside another: ``name`` and ``name.givenName`` would collide."""
    targets = {rule.keys: rule.target for rule in rules}
    for rule in rules:
        for n in range(1, len(rule.keys)):
            if (outer := targets.get(rule.keys[:n])) is not None:
                raise MappingError(
                    f"mapping[{rule.target!r}]: lies inside target {outer!r}; map one or the other"
                )


def _parse_expr(spec: Any, rtype: ResourceType, where: str, depth: int = 1) -> Expr:
    if depth > MAX_DEPTH:
        raise MappingError(f"{where}: expressions nest deeper than {MAX_DEPTH} levels")
    if isinstance(spec, str):
        return _parse_source(spec, rtype, where)
    if not isinstance(spec, dict):
        raise MappingError(
            f"{where}: expected a source path or an object with one of "
            f"{', '.join(_FORMS)}; got {_kind(spec)}"
        )
    ops = [key for key in spec if key in _FORMS]
    if not ops:
        raise MappingError(
            f"{where}: unknown expression {sorted(spec)}; expected one of {', '.join(_FORMS)}"
        )
    if len(ops) > 1:
        raise MappingError(f"{where}: {' and '.join(ops)} cannot be combined in one object")
    op = ops[0]
    required, allowed = _FORMS[op]
    if missing := required - spec.keys():
        raise MappingError(f"{where}: {op!r} needs {', '.join(sorted(missing))!r}")
    if unknown := spec.keys() - {op} - required - allowed:
        raise MappingError(f"{where}: unknown key(s) {sorted(unknown)} in {op!r}")
    return _parse_form(op, spec, rtype, f"{where}.{op}", depth)


def _parse_form(op: str, spec: dict[str, Any], rtype: ResourceType, where: str, depth: int) -> Expr:
    if op == "const":
        return Const(_json_value(spec[op], where))
    if op in ("lower", "upper"):
        return Case(op, _parse_expr(spec[op], rtype, where, depth + 1))
    if op == "default":
        inner = _parse_expr(spec["from"], rtype, f"{where}.from", depth + 1)
        return Default(_json_value(spec[op], where), inner)
    parts = spec[op]
    if not isinstance(parts, list) or not parts:
        raise MappingError(f"{where}: expected a non-empty list of expressions")
    exprs = tuple(_parse_expr(p, rtype, f"{where}[{i}]", depth + 1) for i, p in enumerate(parts))
    if op == "coalesce":
        return Coalesce(exprs)
    sep = spec.get("sep", DEFAULT_SEPARATOR)
    if not isinstance(sep, str):
        raise MappingError(f"{where}: 'sep' must be a string, not {_kind(sep)}")
    return Join(exprs, sep)


def _parse_source(text: str, rtype: ResourceType, where: str) -> Source:
    try:
        path = parse_patch_path(text, rtype)
        if path.value_filter is not None:
            _probe(path.value_filter, path.attribute)
    except ScimError as exc:
        raise MappingError(f"{where}: {exc.detail}") from exc
    return Source(text, path)


def _probe(node: Filter, attr: Attribute) -> None:
    """Evaluate each comparison once, so an operator or operand that cannot apply to its
    sub-attribute (``primary gt "x"``) fails now rather than on every delivery."""
    if isinstance(node, And | Or):
        _probe(node.left, attr)
        _probe(node.right, attr)
    elif isinstance(node, Not):
        _probe(node.inner, attr)
    else:
        matches_element(node, {}, attr)


def _json_value(value: Any, where: str) -> Any:
    """A copy of ``value``, which must be JSON and assigned: unassigned means "missing"."""
    if not _is_json(value):
        raise MappingError(f"{where}: {_kind(value)} is not a JSON value")
    if not is_present(value):
        raise MappingError(
            f"{where}: {json.dumps(value)} is unassigned (RFC 7643 §2.5) and would never be sent"
        )
    return copy.deepcopy(value)


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _write(out: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        out = out.setdefault(key, {})
    out[keys[-1]] = value


def _check_resource_type(mapping: Mapping, rtype: ResourceType) -> None:
    schema_ids = set(rtype.schema_ids())
    for rule in mapping.rules:
        for source in sources(rule.expr):
            if source.path.resolved.schema.id not in schema_ids:
                raise ValueError(f"mapping[{rule.target!r}] was not parsed for {rtype.name}")
