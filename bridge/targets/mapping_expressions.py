"""Mapping expressions: a source path, a constant or a transform, and what each evaluates to.

:mod:`bridge.targets.mapping` parses them from a target's spec; here they are evaluated
against a resource (None when missing, never an unassigned value, RFC 7643 §2.5).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from bridge.scim.attributes import Attribute
from bridge.scim.filter import Filter
from bridge.scim.filter_eval import is_present, matches_element
from bridge.scim.paths import PatchPath, get_value

Resource = dict[str, Any]
"""A SCIM resource as JSON."""

CaseOp = Literal["lower", "upper"]


@dataclass(frozen=True)
class Source:
    """A SCIM attribute path in the source resource."""

    text: str
    path: PatchPath

    def evaluate(self, resource: dict[str, Any]) -> Any:
        """The value in ``resource``; None when it is missing."""
        resolved = self.path.resolved
        container = get_value(resource, resolved.schema.id) if resolved.is_extension else resource
        if not isinstance(container, dict):
            return None
        raw = get_value(container, resolved.attribute.name)
        sub = self.path.sub_attr
        if self.path.value_filter is not None:
            return _select(raw, self.path.value_filter, resolved.attribute, sub)
        if sub is None:
            return _present(raw)
        if resolved.attribute.multi_valued:
            values = (get_value(e, sub.name) for e in _elements(raw))
            return _present([v for v in values if is_present(v)])
        return _present(get_value(raw, sub.name)) if isinstance(raw, dict) else None

    def to_spec(self) -> Any:
        """The spec this expression was parsed from."""
        return self.text


@dataclass(frozen=True)
class Const:
    """A fixed JSON value."""

    value: Any

    def evaluate(self, resource: dict[str, Any]) -> Any:
        """The value in ``resource``; None when it is missing."""
        return self.value

    def to_spec(self) -> Any:
        """The spec this expression was parsed from."""
        return {"const": copy.deepcopy(self.value)}


@dataclass(frozen=True)
class Case:
    """``lower`` or ``upper``: strings, and strings in lists, change case; others pass."""

    op: str
    expr: Expr

    def evaluate(self, resource: dict[str, Any]) -> Any:
        """The value in ``resource``; None when it is missing."""
        return _recase(self.expr.evaluate(resource), self.op)

    def to_spec(self) -> Any:
        """The spec this expression was parsed from."""
        return {self.op: self.expr.to_spec()}


@dataclass(frozen=True)
class Join:
    """The present parts as text, separated by ``sep``; missing when none is present."""

    parts: tuple[Expr, ...]
    sep: str

    def evaluate(self, resource: dict[str, Any]) -> Any:
        """The value in ``resource``; None when it is missing."""
        texts = [t for part in self.parts for t in _texts(part.evaluate(resource))]
        return _present(self.sep.join(texts))

    def to_spec(self) -> Any:
        """The spec this expression was parsed from."""
        return {"join": [p.to_spec() for p in self.parts], "sep": self.sep}


@dataclass(frozen=True)
class Coalesce:
    """The first present part."""

    parts: tuple[Expr, ...]

    def evaluate(self, resource: dict[str, Any]) -> Any:
        """The value in ``resource``; None when it is missing."""
        return next((v for p in self.parts if (v := p.evaluate(resource)) is not None), None)

    def to_spec(self) -> Any:
        """The spec this expression was parsed from."""
        return {"coalesce": [p.to_spec() for p in self.parts]}


@dataclass(frozen=True)
class Default:
    """``expr``, or ``value`` when it is missing."""

    value: Any
    expr: Expr

    def evaluate(self, resource: dict[str, Any]) -> Any:
        """The value in ``resource``; None when it is missing."""
        found = self.expr.evaluate(resource)
        return self.value if found is None else found

    def to_spec(self) -> Any:
        """The spec this expression was parsed from."""
        return {"default": copy.deepcopy(self.value), "from": self.expr.to_spec()}


Expr: TypeAlias = Source | Const | Case | Join | Coalesce | Default
"""An expression: ``evaluate(resource)`` gives its value (None when missing, never an
unassigned value), ``to_spec()`` the JSON it was parsed from."""


def sources(expr: Expr) -> Iterator[Source]:
    """The source paths an expression reads."""
    if isinstance(expr, Source):
        yield expr
    elif isinstance(expr, Case | Default):
        yield from sources(expr.expr)
    elif isinstance(expr, Join | Coalesce):
        for part in expr.parts:
            yield from sources(part)


def _present(value: Any) -> Any:
    """``value``, or None when it is unassigned (RFC 7643 §2.5)."""
    return value if is_present(value) else None


def _elements(raw: Any) -> list[dict[str, Any]]:
    """The elements of a multi-valued complex attribute."""
    items = raw if isinstance(raw, list) else [raw]
    return [e for e in items if isinstance(e, dict)]


def _select(raw: Any, selector: Filter, attr: Attribute, sub: Attribute | None) -> Any:
    """The element (or its ``sub``) the filter selects; the primary one first (RFC 7643 §2.4)."""
    matched = [e for e in _elements(raw) if matches_element(selector, e, attr)]
    matched.sort(key=lambda e: get_value(e, "primary") is not True)
    values = (get_value(e, sub.name) if sub is not None else e for e in matched)
    return next((v for v in values if is_present(v)), None)


def _recase(value: Any, op: str) -> Any:
    if isinstance(value, str):
        return value.lower() if op == "lower" else value.upper()
    if isinstance(value, list):
        return [_recase(v, op) for v in value]
    return value


def _texts(value: Any) -> list[str]:
    """The text of a value for ``join``: lists flattened, objects skipped."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, str | int | float):
        return [str(value)] if is_present(value) else []
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []
