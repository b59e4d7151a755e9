"""Evaluating a parsed SCIM filter (RFC 7644 §3.4.2.2) against resources and elements.

:func:`matches` tests a stored resource, :func:`matches_element` one element of a
multi-valued attribute (PATCH value filters, mappings), and :func:`check_filter` that every
path a filter names exists, before any resource is read. Single values compare by
attribute type: strings honour ``caseExact``; ``dateTime`` values compare as instants;
numbers compare numerically; booleans accept Entra's ``"True"``/``"False"`` strings.
``ne`` is the negation of ``eq``, so a missing attribute is "not equal" to any value, and
a multi-valued attribute is when no value equals. Other operators match when any value
does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from bridge.scim.attributes import Attribute
from bridge.scim.errors import InvalidFilter
from bridge.scim.filter import And, CompareOp, Comparison, Filter, Not, Or, Present, ValuePath
from bridge.scim.resource_types import ResourceType

_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"co", "sw", "ew"})

_Ordered = TypeVar("_Ordered", float, str, datetime)
"""What ordering operators compare: numbers, strings or instants, never two kinds at once."""


def matches(node: Filter, resource: dict[str, Any], rtype: ResourceType) -> bool:
    """Whether ``resource`` (a stored resource of ``rtype``) satisfies the filter."""
    if isinstance(node, And):
        return matches(node.left, resource, rtype) and matches(node.right, resource, rtype)
    if isinstance(node, Or):
        return matches(node.left, resource, rtype) or matches(node.right, resource, rtype)
    if isinstance(node, Not):
        return not matches(node.inner, resource, rtype)
    resolved = rtype.resolve(node.path.urn, node.path.attr, node.path.sub_attr)
    if resolved is None:
        raise InvalidFilter(f"unknown attribute {str(node.path)!r} for {rtype.name}")
    container: object = resource
    if resolved.is_extension:
        container = get_ci(resource, resolved.schema.id)
    raw = get_ci(container, resolved.attribute.name)
    if isinstance(node, ValuePath):
        if resolved.sub_attribute is not None or resolved.attribute.type != "complex":
            raise InvalidFilter(f"{str(node.path)!r} is not a complex attribute")
        elements = raw if isinstance(raw, list) else [raw]
        return any(
            isinstance(e, dict) and matches_element(node.filter, e, resolved.attribute)
            for e in elements
        )
    if resolved.sub_attribute is not None:
        return _test(node, sub_values(raw, resolved.sub_attribute), resolved.target)
    return _test_attribute(node, raw, resolved.attribute)


def matches_element(node: Filter, element: dict[str, Any], parent: Attribute) -> bool:
    """Whether one element of complex attribute ``parent`` satisfies a value filter.

    Paths name sub-attributes of ``parent``: ``value`` or ``emails.value`` for ``emails``.
    """
    if isinstance(node, And):
        return matches_element(node.left, element, parent) and matches_element(
            node.right, element, parent
        )
    if isinstance(node, Or):
        return matches_element(node.left, element, parent) or matches_element(
            node.right, element, parent
        )
    if isinstance(node, Not):
        return not matches_element(node.inner, element, parent)
    if isinstance(node, ValuePath):
        raise InvalidFilter(f"nested value filter on {str(node.path)!r}")
    path = node.path
    if path.urn is None and path.sub_attr is None:
        sub = parent.sub(path.attr)
    elif path.sub_attr is not None and path.attr.casefold() == parent.name.casefold():
        sub = parent.sub(path.sub_attr)
    else:
        sub = None
    if sub is None:
        raise InvalidFilter(f"unknown sub-attribute {str(path)!r} of {parent.name!r}")
    return _test(node, flatten(get_ci(element, sub.name)), sub)


def _test_attribute(node: Comparison | Present, raw: object, attr: Attribute) -> bool:
    """Test a top-level attribute; a complex one compares through its ``value``."""
    if isinstance(node, Present) or attr.type != "complex":
        return _test(node, flatten(raw), attr)
    value_attr = attr.sub("value")
    if value_attr is None:
        raise InvalidFilter(f"cannot compare complex attribute {attr.name!r} to a value")
    return _test(node, sub_values(raw, value_attr), value_attr)


def _test(node: Comparison | Present, values: list[object], attr: Attribute) -> bool:
    if isinstance(node, Present):
        return any(is_present(v) for v in values)
    return compare_any(values, node.op, node.value, attr)


def check_filter(node: Filter, rtype: ResourceType) -> None:
    """Raise InvalidFilter if any path names an attribute ``rtype`` does not define.

    Evaluation finds this too, but only when some resource is tested; a query on an empty
    directory must fail the same way.
    """
    if isinstance(node, And | Or):
        check_filter(node.left, rtype)
        check_filter(node.right, rtype)
        return
    if isinstance(node, Not):
        check_filter(node.inner, rtype)
        return
    resolved = rtype.resolve(node.path.urn, node.path.attr, node.path.sub_attr)
    if resolved is None:
        raise InvalidFilter(f"unknown attribute {str(node.path)!r} for {rtype.name}")
    if isinstance(node, ValuePath):
        if resolved.sub_attribute is not None or resolved.attribute.type != "complex":
            raise InvalidFilter(f"{str(node.path)!r} is not a complex attribute")
        matches_element(node.filter, {}, resolved.attribute)


# --- Values ------------------------------------------------------------------------------


def get_ci(container: object, key: str) -> object:
    """``container[key]`` with the key matched case-insensitively; None if absent."""
    if not isinstance(container, dict):
        return None
    if key in container:
        return container[key]
    folded = key.casefold()
    return next((v for k, v in container.items() if k.casefold() == folded), None)


def flatten(raw: object) -> list[object]:
    """The values of an attribute as a list: a multi-valued one's elements, else [raw]."""
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list) else [raw]


def sub_values(raw: object, sub: Attribute) -> list[object]:
    """The values of sub-attribute ``sub`` across a complex attribute's element(s)."""
    return [v for element in flatten(raw) for v in flatten(get_ci(element, sub.name))]


def is_present(value: object) -> bool:
    """``pr`` (RFC 7644 §3.4.2.2): not null, empty string, empty list or empty object."""
    return value is not None and value != "" and value != [] and value != {}


def compare_any(values: list[object], op: CompareOp, operand: object, attr: Attribute) -> bool:
    """Whether ``values op operand`` holds for the attribute's stored ``values``."""
    if operand is None:  # "eq null" means "not present"
        present = any(is_present(v) for v in values)
        return present if op == "ne" else not present
    if op == "ne":
        return not compare_any(values, "eq", operand, attr)
    if attr.type == "complex":
        raise InvalidFilter(f"cannot compare complex attribute {attr.name!r} to a value")
    if attr.type == "boolean":
        return _compare_booleans(values, op, operand, attr)
    if attr.type in ("integer", "decimal"):
        return _compare_numbers(values, op, operand, attr)
    if attr.type == "dateTime" and op not in _SUBSTRING:
        return _compare_datetimes(values, op, operand, attr)
    return _compare_strings(values, op, operand, attr)


def _compare_booleans(
    values: list[object], op: CompareOp, operand: object, attr: Attribute
) -> bool:
    if op != "eq":
        raise InvalidFilter(f"operator {op!r} does not apply to boolean attribute {attr.name!r}")
    wanted = _to_bool(operand)
    if wanted is None:
        raise InvalidFilter(f"{attr.name!r} is boolean; compare it with true or false")
    return any(_to_bool(v) is wanted for v in values)


def _to_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _compare_numbers(values: list[object], op: CompareOp, operand: object, attr: Attribute) -> bool:
    if op in _SUBSTRING:
        raise InvalidFilter(f"operator {op!r} does not apply to numeric attribute {attr.name!r}")
    wanted = _to_number(operand)
    if wanted is None:
        raise InvalidFilter(f"{attr.name!r} is numeric; compare it with a number")
    return any(
        (number := _to_number(v)) is not None and _ordered(number, op, wanted) for v in values
    )


def _to_number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _compare_datetimes(
    values: list[object], op: CompareOp, operand: object, attr: Attribute
) -> bool:
    wanted = _to_instant(operand)
    if wanted is None:
        raise InvalidFilter(
            f"{attr.name!r} is a dateTime; compare it with an ISO 8601 string, got {operand!r}"
        )
    return any((when := _to_instant(v)) is not None and _ordered(when, op, wanted) for v in values)


def _to_instant(value: object) -> datetime | None:
    """Parse an xsd:dateTime (RFC 7643 §2.3.5); a value without offset is taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _compare_strings(values: list[object], op: CompareOp, operand: object, attr: Attribute) -> bool:
    if not isinstance(operand, str):
        raise InvalidFilter(f"{attr.name!r} is a string; compare it with a quoted string")
    if not attr.case_exact:
        operand = operand.casefold()
    for value in values:
        if not isinstance(value, str):
            continue
        text = value if attr.case_exact else value.casefold()
        if _string_op(text, op, operand):
            return True
    return False


def _string_op(text: str, op: CompareOp, operand: str) -> bool:
    if op == "co":
        return operand in text
    if op == "sw":
        return text.startswith(operand)
    if op == "ew":
        return text.endswith(operand)
    return _ordered(text, op, operand)


def _ordered(left: _Ordered, op: CompareOp, right: _Ordered) -> bool:
    """``eq`` and the orderings of RFC 7644 §3.4.2.2 Table 3 on comparable values."""
    if op == "eq":
        return left == right
    if op not in _ORDERING:
        raise InvalidFilter(f"unknown operator {op!r}")
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    return left <= right
