"""Validate and normalise incoming SCIM resources against their schemas (RFC 7643).

Attribute names are written in their canonical case; values are stored as sent, except
Entra's string booleans ("True"/"False"), which become JSON booleans.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from bridge.directory.ids import is_id
from bridge.scim import errors
from bridge.scim.attributes import Attribute, AttributeType
from bridge.scim.resource_types import ResourceType

_IGNORED_ON_INPUT = {"id", "meta", "password"}
"""Server-assigned common attributes (RFC 7643 §3.1) are ignored, and so is ``password``:
the bridge relays identities, never credentials, so it does not keep them."""


def is_datetime(value: object) -> bool:
    """An xsd:dateTime (RFC 7643 §2.3.5), as ISO 8601 with a ``Z`` or an offset."""
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


TYPE_CHECKS: dict[AttributeType, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "reference": lambda v: isinstance(v, str),
    "binary": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "dateTime": is_datetime,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "decimal": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}
"""Whether a value has an attribute type's JSON shape (RFC 7643 §2.3)."""


def coerce_boolean(value: Any) -> Any:
    """Entra sends booleans as the strings "True"/"False"; accept them as booleans."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def copy_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON document (what ``copy.deepcopy`` gives, several times faster):
    documents hold only what JSON does, and orjson wrote them to Redis in the first place."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(doc))
    return copied


def normalise(body: Any, rtype: ResourceType) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """A request body as a stored document, plus the group's ``members`` if it has any.

    Raises InvalidSyntax for a non-object body and InvalidValue for anything that does not
    fit the schema; read-only attributes are dropped (RFC 7644 §3.3, §3.5.1).
    """
    if not isinstance(body, dict):
        raise errors.InvalidSyntax("the request body must be a JSON object")
    doc: dict[str, Any] = {"schemas": _schemas(body, rtype)}
    members: list[dict[str, Any]] | None = None
    for key, value in body.items():
        lower = key.lower()
        if lower == "schemas" or lower in _IGNORED_ON_INPUT or value is None:
            continue
        extension = rtype.extension(key)
        if extension is not None:
            if not isinstance(value, dict):
                raise errors.InvalidValue(f"{key} must be an object")
            ext = _complex_members(value, extension.attribute, extension.id)
            if ext:
                doc[extension.id] = ext
                if extension.id not in doc["schemas"]:
                    doc["schemas"].append(extension.id)
            continue
        resolved = rtype.resolve(None, key)
        if resolved is None:
            raise errors.InvalidValue(f"unknown attribute '{key}' for {rtype.name}")
        attr = resolved.attribute
        if attr.name in ("id", "schemas"):
            continue
        if rtype.id == "Group" and attr.name == "members":
            members = normalise_members(value)
            continue
        if attr.mutability == "readOnly":
            continue
        checked = value if is_plain_string(attr, value) else check_value(attr, value, attr.name)
        if checked is not None:
            doc[attr.name] = checked
    _check_required(doc, rtype)
    return doc, members


def normalise_members(value: Any) -> list[dict[str, Any]]:
    """Group ``members`` (RFC 7643 §4.2): a list of objects with a ``value`` id."""
    if not isinstance(value, list):
        raise errors.InvalidValue("members must be a list")
    out = []
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("value"), str)
            or not item["value"]
        ):
            raise errors.InvalidValue("each member needs a string 'value'")
        check_member_id(item["value"])
        out.append(item)
    return out


def check_member_id(value: str) -> None:
    """A member ``value`` must be the id of a user or group (RFC 7643 §4.2): one that has
    not the shape of our ids names no resource, and is refused before any Redis call."""
    if not is_id(value):
        raise errors.InvalidValue(f"member value {shorten(value)} is not the id of a user or group")


SHOWN_CHARS = 64
"""How much of a client's value an error detail repeats."""


def shorten(value: object) -> str:
    """``repr(value)``, cut to SHOWN_CHARS: error details never echo a whole large input."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def member_extras(member: Mapping[str, Any]) -> dict[str, Any]:
    """What a member entry stores besides its id and type: as sent, read-only parts dropped."""
    return {k: v for k, v in member.items() if k not in ("value", "type") and v is not None}


def check_value(attr: Attribute, value: Any, where: str) -> Any:
    """``value`` checked against ``attr`` (type, multiplicity); None when unassigned."""
    if value is None:
        return None
    if attr.multi_valued:
        if not isinstance(value, list):
            raise errors.InvalidValue(f"{where} must be a list")
        items = [_single(attr, v, where) for v in value if v is not None]
        items = [v for v in items if v not in (None, {})]
        if attr.type == "complex" and sum(1 for v in items if v.get("primary") is True) > 1:
            raise errors.InvalidValue(f"only one of {where} may be primary (RFC 7643 §2.4)")
        return items or None
    if isinstance(value, list):
        raise errors.InvalidValue(f"{where} is single-valued")
    return _single(attr, value, where)


def _single(attr: Attribute, value: Any, where: str) -> Any:
    if attr.type == "complex":
        if not isinstance(value, dict):
            raise errors.InvalidValue(f"{where} must be an object")
        return _complex_members(value, attr.sub, where) or None
    if attr.type == "boolean":
        value = coerce_boolean(value)
        if not isinstance(value, bool):
            raise errors.InvalidValue(f"{where} must be a boolean")
        return value
    if attr.type == "dateTime":
        if not is_datetime(value):
            raise errors.InvalidValue(f"{where} must be an xsd:dateTime")
        return value
    check = TYPE_CHECKS.get(attr.type)
    if check is not None and not check(value):
        raise errors.InvalidValue(f"{where} must be of type {attr.type}")
    return value


def _complex_members(
    value: dict[str, Any], find: Callable[[str], Attribute | None], where: str
) -> dict[str, Any]:
    """The members of a complex value or an extension object, each checked against the
    definition ``find`` gives for its name (case-insensitive, RFC 7643 §2.1)."""
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        attr = find(key)
        if attr is None:
            raise errors.InvalidValue(f"unknown attribute '{key}' in {where}")
        if attr.mutability == "readOnly" or sub_value is None:
            continue
        if is_plain_string(attr, sub_value):
            out[attr.name] = sub_value
            continue
        checked = check_value(attr, sub_value, f"{where}.{attr.name}")
        if checked is not None:
            out[attr.name] = checked
    return out


_STRING_TYPES = frozenset({"string", "reference", "binary"})


def is_plain_string(attr: Attribute, value: object) -> bool:
    """Whether ``value`` is a string for a single-valued attribute stored as a string: most
    of a body's values, valid as they are (what :func:`check_value` answers for them,
    without building the path its errors would name)."""
    return value.__class__ is str and not attr.multi_valued and attr.type in _STRING_TYPES


def _schemas(body: dict[str, Any], rtype: ResourceType) -> list[str]:
    sent = body.get("schemas", body.get("Schemas"))
    if sent is None:
        return [rtype.schema.id]
    if not isinstance(sent, list) or not all(isinstance(s, str) for s in sent):
        raise errors.InvalidValue("schemas must be a list of URIs")
    known = {s.lower(): s for s in rtype.schema_ids()}
    out = []
    for urn in sent:
        canonical = known.get(urn.lower())
        if canonical is None:
            # Entra lists its ADSCIM Group URN, which carries no attributes. A URN we do not
            # know is dropped here; attributes sent under it are rejected as unknown below.
            continue
        if canonical not in out:
            out.append(canonical)
    if rtype.schema.id not in out:
        raise errors.InvalidValue(f"schemas must include {rtype.schema.id}")
    return out


def _check_required(doc: dict[str, Any], rtype: ResourceType) -> None:
    for attr in rtype.schema.attributes:
        if attr.required and attr.mutability != "readOnly" and doc.get(attr.name) in (None, ""):
            raise errors.InvalidValue(f"{attr.name} is required")
    for schema, required in rtype.extensions:
        if required and schema.id not in doc:
            raise errors.InvalidValue(f"extension {schema.id} is required")
