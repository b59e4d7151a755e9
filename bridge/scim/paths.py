"""PATCH paths (RFC 7644 §3.5.2): ``PATH = attrPath / valuePath [subAttr]``.

A path names an attribute of a resource type (``userName``, ``name.givenName``,
``urn:...:enterprise:2.0:User:manager.value``), optionally narrowed to the elements of a
multi-valued complex attribute by a value filter (``emails[type eq "work"]``), optionally
followed by one of their sub-attributes (``emails[type eq "work"].value``).

The helpers that follow read and write the values a path names in a stored document:
attribute names match case-insensitively (RFC 7643 §2.1) and are written in canonical
case; values are checked against the attribute's type, Entra's string booleans accepted;
elements of multi-valued attributes keep at most one ``primary`` (RFC 7643 §2.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from bridge.scim.attributes import Attribute
from bridge.scim.errors import InvalidPath, InvalidValue, NoTarget
from bridge.scim.filter import And, AttrPath, Comparison, Filter, Not, Or, ValuePath, parse_filter
from bridge.scim.resource_types import ResolvedPath, ResourceType
from bridge.scim.resources import TYPE_CHECKS

_SUB_ATTR = re.compile(r"^\.(\$ref|[A-Za-z][A-Za-z0-9_-]*)$")


@dataclass(frozen=True)
class PatchPath:
    """A parsed PATCH path, resolved against a resource type."""

    resolved: ResolvedPath
    """The top-level attribute, plus its sub-attribute when the path names one."""
    value_filter: Filter | None
    """The ``[...]`` part, selecting elements of a multi-valued complex attribute."""
    sub_attr: Attribute | None
    """The sub-attribute after a value filter, or of a plain ``attr.sub`` path."""

    @property
    def attribute(self) -> Attribute:
        """The top-level attribute the path lives in."""
        return self.resolved.attribute


def parse_patch_path(text: str, rtype: ResourceType) -> PatchPath:
    """Parse and resolve a PATCH ``path``; InvalidPath if malformed or unknown.

    A syntax error inside the brackets raises InvalidFilter, the scimType RFC 7644 §3.12
    gives to a PATCH path filter.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidPath("empty path")
    text = text.strip()
    head, inner, tail = _split_value_path(text)
    resolved = rtype.resolve_path_text(head)
    if resolved is None:
        raise InvalidPath(f"unknown attribute path {text!r} for {rtype.name}")
    if inner is None:
        return PatchPath(resolved, None, resolved.sub_attribute)
    attr = resolved.attribute
    if resolved.sub_attribute is not None or attr.type != "complex" or not attr.multi_valued:
        raise InvalidPath(f"{head!r} is not a multi-valued complex attribute: {text!r}")
    value_filter = parse_filter(inner)
    _check_filter_paths(value_filter, attr, text)
    sub = None
    if tail:
        m = _SUB_ATTR.match(tail)
        sub = attr.sub(m.group(1)) if m else None
        if sub is None:
            raise InvalidPath(f"unknown sub-attribute in {text!r}")
        resolved = replace(resolved, sub_attribute=sub)
    return PatchPath(resolved, value_filter, sub)


def _split_value_path(text: str) -> tuple[str, str | None, str]:
    """``attr[filter].sub`` as ``("attr", "filter", ".sub")``; no brackets: ``(text, None, "")``."""
    start = text.find("[")
    if start < 0:
        if "]" in text:
            raise InvalidPath(f"unbalanced ']' in {text!r}")
        return text, None, ""
    in_string = escaped = False
    for i in range(start + 1, len(text)):
        ch = text[i]
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = in_string
        elif ch == '"':
            in_string = not in_string
        elif ch == "]" and not in_string:
            return text[:start].strip(), text[start + 1 : i], text[i + 1 :].strip()
    raise InvalidPath(f"missing ']' in {text!r}")


def _check_filter_paths(node: Filter, parent: Attribute, text: str) -> None:
    """Every attribute a value filter names must be a sub-attribute of ``parent``."""
    if isinstance(node, And | Or):
        _check_filter_paths(node.left, parent, text)
        _check_filter_paths(node.right, parent, text)
    elif isinstance(node, Not):
        _check_filter_paths(node.inner, parent, text)
    elif isinstance(node, ValuePath) or _filter_sub(node.path, parent) is None:
        raise InvalidPath(f"{text!r}: the filter must name sub-attributes of {parent.name}")


def _filter_sub(path: AttrPath, parent: Attribute) -> Attribute | None:
    """The sub-attribute a filter path names: ``type``, or ``emails.type`` in ``emails[...]``."""
    if path.urn is not None:
        return None
    if path.sub_attr is None:
        return parent.sub(path.attr)
    return parent.sub(path.sub_attr) if path.attr.casefold() == parent.name.casefold() else None


def equality_terms(node: Filter, parent: Attribute) -> dict[str, Any] | None:
    """``{sub-attribute name: value}`` for ``a eq x [and b eq y ...]``; None otherwise.

    Names are canonical sub-attributes of ``parent``; used to create the element a
    value-filtered path names when no element matches.
    """
    if isinstance(node, And):
        left, right = equality_terms(node.left, parent), equality_terms(node.right, parent)
        if left is None or right is None or any(left[k] != right[k] for k in left.keys() & right):
            return None
        return {**left, **right}
    if not isinstance(node, Comparison) or node.op != "eq" or node.value is None:
        return None
    sub = _filter_sub(node.path, parent)
    return None if sub is None else {sub.name: node.value}


def equality_values(node: Filter, parent: Attribute, sub_name: str) -> list[Any] | None:
    """The values of ``sub eq x [or sub eq y ...]`` on sub-attribute ``sub_name``; else None."""
    if isinstance(node, Or):
        left = equality_values(node.left, parent, sub_name)
        right = equality_values(node.right, parent, sub_name)
        return None if left is None or right is None else left + right
    terms = equality_terms(node, parent) if isinstance(node, Comparison) else None
    if terms is None or set(terms) != {sub_name}:
        return None
    return [terms[sub_name]]


# --- Values at a path ------------------------------------------------------------------


def coerce_value(attr: Attribute, value: Any) -> Any:
    """``value`` as stored for ``attr``: canonical names, string booleans as booleans."""
    if attr.multi_valued:
        items = value if isinstance(value, list) else [value]
        coerced = (_coerce_single(attr, v) for v in items if v is not None)
        return [v for v in coerced if v != {}]
    if isinstance(value, list):
        raise InvalidValue(f"{attr.name} is single-valued")
    return _coerce_single(attr, value)


def coerce_element(attr: Attribute, value: Any) -> dict[str, Any]:
    """One element of a multi-valued complex attribute."""
    if isinstance(value, list):
        raise InvalidValue(f"a value-filtered {attr.name} path takes one object")
    return _coerce_complex(attr, value)


def _coerce_single(attr: Attribute, value: Any) -> Any:
    if attr.type == "complex":
        return _coerce_complex(attr, value)
    if attr.type == "boolean" and isinstance(value, str):
        folded = value.strip().casefold()
        if folded in ("true", "false"):
            return folded == "true"  # Entra sends "True"/"False"
    check = TYPE_CHECKS.get(attr.type)
    if check is not None and not check(value):
        raise InvalidValue(f"{attr.name} must be of type {attr.type}, not {value!r}")
    return value


def _coerce_complex(attr: Attribute, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        if isinstance(value, list) or attr.sub("value") is None:
            raise InvalidValue(f"{attr.name} must be an object")
        value = {"value": value}  # Entra sends the manager as a bare id
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub(key)
        if sub is None:
            raise InvalidValue(f"unknown sub-attribute {key!r} of {attr.name}")
        if item is not None and sub.mutability != "readOnly":
            out[sub.name] = coerce_value(sub, item)
    return out


# --- Case-insensitive access (RFC 7643 §2.1: attribute names are case-insensitive) -----


def find_key(mapping: dict[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case; None if there is none."""
    if name in mapping:
        return name
    folded = name.casefold()
    return next((k for k in mapping if isinstance(k, str) and k.casefold() == folded), None)


def get_value(mapping: dict[str, Any], name: str) -> Any:
    """``mapping[name]`` ignoring case; None if absent."""
    key = find_key(mapping, name)
    return None if key is None else mapping[key]


def delete_value(mapping: dict[str, Any], name: str) -> None:
    """Delete ``name`` in any case; absent is fine."""
    folded = name.casefold()
    for key in [k for k in mapping if isinstance(k, str) and k.casefold() == folded]:
        del mapping[key]


def set_value(mapping: dict[str, Any], name: str, value: Any) -> None:
    """Write under the canonical ``name``, dropping keys that differ only in case."""
    folded = name.casefold()
    for key in [k for k in mapping if isinstance(k, str) and k != name and k.casefold() == folded]:
        del mapping[key]
    mapping[name] = value


def store_value(mapping: dict[str, Any], name: str, value: Any) -> None:
    """Set ``name``, or delete it when ``value`` is unassigned (RFC 7643 §2.5)."""
    if value is None or value == [] or value == {}:
        delete_value(mapping, name)
    else:
        set_value(mapping, name, value)


def merge_values(target: dict[str, Any], values: dict[str, Any]) -> None:
    """Set each of ``values`` on ``target`` (canonical names already)."""
    for name, value in values.items():
        set_value(target, name, value)


# --- Elements of multi-valued attributes ------------------------------------------------


def is_hollow(attr: Attribute, element: dict[str, Any]) -> bool:
    """Whether an element lost its content: its ``value``, or all but ``type``/``primary``."""
    if attr.sub("value") is not None and get_value(element, "value") is None:
        return True
    return not {k.casefold() for k in element} - {"type", "primary"}


def element_from_filter(path: PatchPath) -> dict[str, Any]:
    """The element ``emails[type eq "work"]`` names, for when it does not exist yet.

    RFC 7644 §3.5.2.3 answers noTarget here; Entra sends ``add``/``replace`` of
    ``emails[type eq "work"].value`` for users without a work e-mail and expects it made.
    """
    attr = path.attribute
    terms = equality_terms(path.value_filter, attr) if path.value_filter is not None else None
    if not terms:
        raise NoTarget(f"no value of {attr.name} matches the path filter")
    element: dict[str, Any] = {}
    for name, value in terms.items():
        sub = attr.sub(name)
        assert sub is not None
        element[name] = coerce_value(sub, value)
    return element


def settle_primary(elements: list[Any], fresh: list[Any]) -> None:
    """At most one element may be primary (RFC 7643 §2.4): the newly set one wins."""
    winners = [e for e in fresh if isinstance(e, dict) and get_value(e, "primary") is True]
    if len(winners) > 1:
        raise InvalidValue("only one value may be primary (RFC 7643 §2.4)")
    for element in elements:
        if winners and element is not winners[0] and isinstance(element, dict):
            if get_value(element, "primary") is True:
                set_value(element, "primary", False)
