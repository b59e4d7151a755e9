"""Value comparison for SCIM filters (RFC 7644 §3.4.2.2), by attribute type.

Strings honour ``caseExact``; ``dateTime`` values compare as instants; numbers compare
numerically; booleans accept Entra's ``"True"``/``"False"`` strings. ``ne`` is the
negation of ``eq``, so a missing attribute is "not equal" to any value, and a
multi-valued attribute is when no value equals. Other operators match when any value does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.scim.attributes import Attribute
from bridge.scim.errors import InvalidFilter

_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"co", "sw", "ew"})
_STRING_TYPES = frozenset({"string", "reference", "binary"})


def get_ci(container: object, key: str) -> object:
    """``container[key]`` with the key matched case-insensitively; None if absent."""
    if not isinstance(container, dict):
        return None
    if key in container:
        return container[key]
    folded = key.casefold()
    return next((v for k, v in container.items() if k.casefold() == folded), None)


def flatten(raw: object) -> list:
    """The values of an attribute as a list: a multi-valued one's elements, else [raw]."""
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list) else [raw]


def sub_values(raw: object, sub: Attribute) -> list:
    """The values of sub-attribute ``sub`` across a complex attribute's element(s)."""
    return [v for element in flatten(raw) for v in flatten(get_ci(element, sub.name))]


def is_present(value: object) -> bool:
    """``pr`` (RFC 7644 §3.4.2.2): not null, empty string, empty list or empty object."""
    return value is not None and value != "" and value != [] and value != {}


def compare_any(values: list, op: str, operand: object, attr: Attribute) -> bool:
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


def _compare_booleans(values: list, op: str, operand: object, attr: Attribute) -> bool:
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


def _compare_numbers(values: list, op: str, operand: object, attr: Attribute) -> bool:
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


def _compare_datetimes(values: list, op: str, operand: object, attr: Attribute) -> bool:
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


def _compare_strings(values: list, op: str, operand: object, attr: Attribute) -> bool:
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


def _string_op(text: str, op: str, operand: str) -> bool:
    if op == "co":
        return operand in text
    if op == "sw":
        return text.startswith(operand)
    if op == "ew":
        return text.endswith(operand)
    return _ordered(text, op, operand)


def _ordered(left: object, op: str, right: object) -> bool:
    """``eq`` and the orderings of RFC 7644 §3.4.2.2 Table 3 on comparable values."""
    if op == "eq":
        return left == right
    if op not in _ORDERING:
        raise InvalidFilter(f"unknown operator {op!r}")
    if op == "gt":
        return left > right  # type: ignore[operator]
    if op == "ge":
        return left >= right  # type: ignore[operator]
    if op == "lt":
        return left < right  # type: ignore[operator]
    return left <= right  # type: ignore[operator]
