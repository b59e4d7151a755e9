"""The SCIM schema model (RFC 7643 §2, §7): attribute and schema definitions, as JSON too.

An :class:`Attribute` carries the characteristics of RFC 7643 §2.2, a :class:`Schema` a
URN and its attributes. Both turn into their §7 representation (``/Schemas``) and are read
back from one, which is how configured extension schemas are loaded. The schemas the RFC
defines are in :mod:`bridge.scim.core_schemas`; resource types and path resolution in
:mod:`bridge.scim.resource_types`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeVar, get_args

from bridge.scim import urns

SCHEMA_SCHEMA = urns.SCHEMA

AttributeType = Literal[
    "string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"
]
"""The data types of RFC 7643 §2.3."""

MutabilityRule = Literal["readOnly", "readWrite", "immutable", "writeOnly"]
"""The ``mutability`` characteristic (RFC 7643 §2.2)."""

ReturnRule = Literal["always", "never", "default", "request"]
"""The ``returned`` characteristic (RFC 7643 §2.2)."""

UniquenessRule = Literal["none", "server", "global"]
"""The ``uniqueness`` characteristic (RFC 7643 §2.2)."""

ATTR_NAME = re.compile(r"^(?:\$ref|[A-Za-z][A-Za-z0-9_-]*)$")
"""ATTRNAME of RFC 7644 §3.4.2.2 (ALPHA *(nameChar)), plus ``$ref`` (RFC 7643 §2.4)."""

_Choice = TypeVar("_Choice", bound=str)


def _choices(kind: Any) -> dict[str, Any]:
    """The values of a ``Literal`` by themselves, so a lookup narrows a str to the Literal."""
    return {value: value for value in get_args(kind)}


_TYPES: dict[str, AttributeType] = _choices(AttributeType)
_MUTABILITIES: dict[str, MutabilityRule] = _choices(MutabilityRule)
_RETURNED: dict[str, ReturnRule] = _choices(ReturnRule)
_UNIQUENESSES: dict[str, UniquenessRule] = _choices(UniquenessRule)


@dataclass(frozen=True)
class Attribute:
    """One attribute definition (RFC 7643 §2.2 characteristics, §7 representation)."""

    name: str
    type: AttributeType = "string"
    multi_valued: bool = False
    case_exact: bool = False
    required: bool = False
    mutability: MutabilityRule = "readWrite"
    returned: ReturnRule = "default"
    uniqueness: UniquenessRule = "none"
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    description: str = ""

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name``, compared case-insensitively."""
        return self._subs.get(name.casefold())

    @cached_property
    def _subs(self) -> dict[str, Attribute]:
        return by_name(self.sub_attributes)

    def to_scim(self) -> dict[str, Any]:
        """The RFC 7643 §7 representation of this attribute."""
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.sub_attributes:
            body["subAttributes"] = [a.to_scim() for a in self.sub_attributes]
        if self.canonical_values:
            body["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            body["referenceTypes"] = list(self.reference_types)
        return body

    @classmethod
    def from_scim(cls, data: object, *, nested: bool = False) -> Attribute:
        """Parse an RFC 7643 §7 attribute definition; ValueError if malformed."""
        if not isinstance(data, dict):
            raise ValueError("attribute definition must be an object")
        name = data.get("name")
        if not isinstance(name, str) or not ATTR_NAME.match(name):
            raise ValueError(f"invalid attribute name {name!r}")
        type_ = _choice(data, "type", _TYPES, "string", name)
        subs = data.get("subAttributes", [])
        if not isinstance(subs, list):
            raise ValueError(f"{name}: subAttributes must be a list")
        if subs and (type_ != "complex" or nested):
            raise ValueError(f"{name}: only a top-level complex attribute has subAttributes")
        sub_attributes = tuple(cls.from_scim(s, nested=True) for s in subs)
        _check_unique(sub_attributes, f"{name}: duplicate sub-attribute")
        return cls(
            name=name,
            type=type_,
            multi_valued=_flag(data, "multiValued", name),
            case_exact=_flag(data, "caseExact", name),
            required=_flag(data, "required", name),
            mutability=_choice(data, "mutability", _MUTABILITIES, "readWrite", name),
            returned=_choice(data, "returned", _RETURNED, "default", name),
            uniqueness=_choice(data, "uniqueness", _UNIQUENESSES, "none", name),
            sub_attributes=sub_attributes,
            canonical_values=_strings(data, "canonicalValues", name),
            reference_types=_strings(data, "referenceTypes", name),
            description=_text(data, "description", name),
        )


@dataclass(frozen=True)
class Schema:
    """A schema: a URN plus its attribute definitions (RFC 7643 §7)."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute | None:
        """The attribute called ``name``, compared case-insensitively."""
        return self._attributes.get(name.casefold())

    @cached_property
    def _attributes(self) -> dict[str, Attribute]:
        return by_name(self.attributes)

    def to_scim(self, base_url: str) -> dict[str, Any]:
        """The RFC 7643 §7 Schema resource, as served at ``/Schemas/{id}``."""
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attributes],
            "meta": {
                "resourceType": "Schema",
                "location": f"{base_url.rstrip('/')}/Schemas/{self.id}",
            },
        }

    @classmethod
    def from_scim(cls, data: object) -> Schema:
        """Parse an RFC 7643 §7 schema document; ValueError if malformed."""
        if not isinstance(data, dict):
            raise ValueError("schema must be an object")
        urn = data.get("id")
        if not isinstance(urn, str) or not re.match(r"^urn:\S+$", urn, re.IGNORECASE):
            raise ValueError(f"schema id must be a URN, got {urn!r}")
        attrs = data.get("attributes")
        if not isinstance(attrs, list):
            raise ValueError(f"{urn}: attributes must be a list")
        attributes = tuple(Attribute.from_scim(a) for a in attrs)
        _check_unique(attributes, f"{urn}: duplicate attribute")
        return cls(
            id=urn,
            name=_text(data, "name", urn),
            description=_text(data, "description", urn),
            attributes=attributes,
        )


def by_name(attributes: Iterable[Attribute]) -> dict[str, Attribute]:
    """Attributes keyed by case-folded name: names compare case-insensitively (RFC 7643 §2.1)."""
    return {a.name.casefold(): a for a in attributes}


def _check_unique(attributes: tuple[Attribute, ...], message: str) -> None:
    seen: set[str] = set()
    for a in attributes:
        if a.name.casefold() in seen:
            raise ValueError(f"{message} {a.name!r}")
        seen.add(a.name.casefold())


def _flag(data: dict[str, Any], key: str, owner: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {key} must be a boolean")
    return value


def _choice(
    data: dict[str, Any], key: str, allowed: Mapping[str, _Choice], default: _Choice, owner: str
) -> _Choice:
    value = data.get(key, default)
    choice = allowed.get(value) if isinstance(value, str) else None
    if choice is None:
        raise ValueError(f"{owner}: {key} must be one of {sorted(allowed)}, got {value!r}")
    return choice


def _strings(data: dict[str, Any], key: str, owner: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{owner}: {key} must be a list of strings")
    return tuple(value)


def _text(data: dict[str, Any], key: str, owner: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{owner}: {key} must be a string")
    return value
