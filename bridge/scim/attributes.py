"""SCIM schema definitions (RFC 7643): attributes, schemas and resource types.

The core User and Group schemas follow RFC 7643 §8.7.1, the enterprise User extension
§4.3. The common attributes ``id``, ``externalId``, ``meta`` (§3.1) and ``schemas`` (§3)
belong to every resource but to no schema, so they live in :data:`COMMON_ATTRIBUTES`,
which :meth:`ResourceType.resolve` consults before the core schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"

TYPES = frozenset(
    {"string", "boolean", "decimal", "integer", "dateTime", "binary", "reference", "complex"}
)
MUTABILITIES = frozenset({"readOnly", "readWrite", "immutable", "writeOnly"})
RETURNED = frozenset({"always", "never", "default", "request"})
UNIQUENESSES = frozenset({"none", "server", "global"})

_ATTR_NAME = re.compile(r"^(?:\$ref|[A-Za-z][A-Za-z0-9_-]*)$")
"""ATTRNAME of RFC 7644 §3.4.2.2 (ALPHA *(nameChar)), plus ``$ref`` (RFC 7643 §2.4)."""


@dataclass(frozen=True)
class Attribute:
    """One attribute definition (RFC 7643 §2.2 characteristics, §7 representation)."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    case_exact: bool = False
    required: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    description: str = ""

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name``, compared case-insensitively."""
        return self._subs.get(name.casefold())

    @cached_property
    def _subs(self) -> dict[str, Attribute]:
        return _by_name(self.sub_attributes)

    def to_scim(self) -> dict:
        """The RFC 7643 §7 representation of this attribute."""
        body: dict = {
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
        if not isinstance(name, str) or not _ATTR_NAME.match(name):
            raise ValueError(f"invalid attribute name {name!r}")
        type_ = _choice(data, "type", TYPES, "string", name)
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
            mutability=_choice(data, "mutability", MUTABILITIES, "readWrite", name),
            returned=_choice(data, "returned", RETURNED, "default", name),
            uniqueness=_choice(data, "uniqueness", UNIQUENESSES, "none", name),
            sub_attributes=sub_attributes,
            canonical_values=_strings(data, "canonicalValues", name),
            reference_types=_strings(data, "referenceTypes", name),
            description=_text(data, "description", name),
        )


MEMO_LIMIT = 4096
"""Resolved paths a resource type remembers before it starts over (client input varies)."""


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
        return _by_name(self.attributes)

    def to_scim(self, base_url: str) -> dict:
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
    def from_scim(cls, data: dict) -> Schema:
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


@dataclass(frozen=True)
class ResolvedPath:
    """Where an attribute path points: the defining schema and attribute definitions.

    ``extension`` is set by :meth:`ResourceType.resolve` when ``schema`` is one of the
    resource type's extensions rather than its core schema.
    """

    schema: Schema
    attribute: Attribute
    sub_attribute: Attribute | None
    extension: bool = False

    @property
    def is_extension(self) -> bool:
        """True when the attribute lives under the extension's URN key in a resource."""
        return self.extension

    @property
    def target(self) -> Attribute:
        """The innermost attribute the path names."""
        return self.sub_attribute or self.attribute


@dataclass(frozen=True)
class ResourceType:
    """A resource type (RFC 7643 §6): endpoint, core schema and extensions."""

    id: str
    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...]

    def schema_ids(self) -> tuple[str, ...]:
        """The core schema URN followed by the extension URNs."""
        return (self.schema.id, *(s.id for s, _ in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        """The extension schema with this URN, compared case-insensitively."""
        folded = urn.casefold()
        return next((s for s, _ in self.extensions if s.id.casefold() == folded), None)

    def resolve(
        self, urn: str | None, attr: str, sub_attr: str | None = None
    ) -> ResolvedPath | None:
        """Find an attribute (and sub-attribute) by name; None if the type lacks it.

        ``urn=None`` or the core URN means the core schema, where the common attributes
        (RFC 7643 §3.1) are found too. Answers are remembered: every request resolves the
        same few paths.
        """
        key = (
            urn.casefold() if urn else None,
            attr.casefold(),
            sub_attr.casefold() if sub_attr else None,
        )
        memo = self._memo
        if key not in memo:
            if len(memo) > MEMO_LIMIT:
                memo.clear()
            memo[key] = self._resolve(urn, attr, sub_attr)
        return memo[key]

    @cached_property
    def _memo(self) -> dict:
        return {}

    def _resolve(self, urn: str | None, attr: str, sub_attr: str | None) -> ResolvedPath | None:
        if urn is None or urn.casefold() == self.schema.id.casefold():
            schema, extension = self.schema, False
            found = _find(COMMON_ATTRIBUTES, attr) or schema.attribute(attr)
        else:
            ext = self.extension(urn)
            if ext is None:
                return None
            schema, extension = ext, True
            found = ext.attribute(attr)
        if found is None:
            return None
        sub = None
        if sub_attr is not None:
            sub = found.sub(sub_attr)
            if sub is None:
                return None
        return ResolvedPath(schema, found, sub, extension)

    def resolve_path_text(self, text: str) -> ResolvedPath | None:
        """Resolve ``attr``, ``attr.sub`` or either one prefixed by a known schema URN."""
        memo = self._memo
        key = ("text", text)
        if key not in memo:
            if len(memo) > MEMO_LIMIT:
                memo.clear()
            memo[key] = self._resolve_text(text)
        return memo[key]

    def _resolve_text(self, text: str) -> ResolvedPath | None:
        urn = None
        folded = text.casefold()
        for schema_id in sorted(self.schema_ids(), key=len, reverse=True):
            if folded.startswith(schema_id.casefold() + ":"):
                urn, text = schema_id, text[len(schema_id) + 1 :]
                break
        attr, dot, sub = text.partition(".")
        if not _ATTR_NAME.match(attr) or (dot and not _ATTR_NAME.match(sub)):
            return None
        return self.resolve(urn, attr, sub if dot else None)

    def to_scim(self, base_url: str) -> dict:
        """The RFC 7643 §6 ResourceType resource."""
        return {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": [
                {"schema": s.id, "required": required} for s, required in self.extensions
            ],
            "meta": {
                "resourceType": "ResourceType",
                "location": f"{base_url.rstrip('/')}/ResourceTypes/{self.id}",
            },
        }


def build_resource_types(
    extra_user_extensions: Iterable[Schema] = (),
    extra_group_extensions: Iterable[Schema] = (),
) -> dict[str, ResourceType]:
    """The User and Group resource types, with any configured extension schemas."""
    user_ext = ((ENTERPRISE_USER, False), *((s, False) for s in extra_user_extensions))
    group_ext = tuple((s, False) for s in extra_group_extensions)
    for core, extensions in ((CORE_USER, user_ext), (CORE_GROUP, group_ext)):
        ids = [core.id.casefold(), *(s.id.casefold() for s, _ in extensions)]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate schema URN among the {core.name} extensions")
    return {
        "User": ResourceType("User", "User", "/Users", "User Account", CORE_USER, user_ext),
        "Group": ResourceType("Group", "Group", "/Groups", "Group", CORE_GROUP, group_ext),
    }


def _by_name(attributes: Iterable[Attribute]) -> dict[str, Attribute]:
    return {a.name.casefold(): a for a in attributes}


def _find(attributes: Iterable[Attribute], name: str) -> Attribute | None:
    folded = name.casefold()
    return next((a for a in attributes if a.name.casefold() == folded), None)


def _check_unique(attributes: tuple[Attribute, ...], message: str) -> None:
    seen: set[str] = set()
    for a in attributes:
        if a.name.casefold() in seen:
            raise ValueError(f"{message} {a.name!r}")
        seen.add(a.name.casefold())


def _flag(data: dict, key: str, owner: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {key} must be a boolean")
    return value


def _choice(data: dict, key: str, allowed: frozenset[str], default: str, owner: str) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise ValueError(f"{owner}: {key} must be one of {sorted(allowed)}, got {value!r}")
    return value


def _strings(data: dict, key: str, owner: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{owner}: {key} must be a list of strings")
    return tuple(value)


def _text(data: dict, key: str, owner: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{owner}: {key} must be a string")
    return value


# --- Definitions (RFC 7643 §8.7.1) -------------------------------------------------------


def _str(name: str, description: str = "", **kw: Any) -> Attribute:
    return Attribute(name, "string", description=description, **kw)


def _plural(
    name: str,
    description: str,
    *,
    value: Attribute | None = None,
    types: tuple[str, ...] = (),
    mutability: str = "readWrite",
) -> Attribute:
    """A multi-valued complex attribute with value/display/type/primary (RFC 7643 §2.4)."""
    subs = (
        value or _str("value", f"The value of the {name} entry."),
        _str("display", "A human-readable name, primarily used for display purposes."),
        _str("type", "A label indicating the attribute's function.", canonical_values=types),
        Attribute("primary", "boolean", description="Whether this is the primary value."),
    )
    return Attribute(
        name,
        "complex",
        multi_valued=True,
        mutability=mutability,
        sub_attributes=subs,
        description=description,
    )


COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "id",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
        description="Unique identifier for the resource, assigned by the service provider.",
    ),
    _str("externalId", "Identifier assigned by the provisioning client.", case_exact=True),
    Attribute(
        "meta",
        "complex",
        mutability="readOnly",
        description="Resource metadata.",
        sub_attributes=(
            _str(
                "resourceType",
                "The name of the resource type.",
                case_exact=True,
                mutability="readOnly",
            ),
            Attribute(
                "created",
                "dateTime",
                mutability="readOnly",
                description="When the resource was added.",
            ),
            Attribute(
                "lastModified",
                "dateTime",
                mutability="readOnly",
                description="When the resource was last updated.",
            ),
            Attribute(
                "location",
                "reference",
                case_exact=True,
                mutability="readOnly",
                reference_types=("uri",),
                description="The resource's URI.",
            ),
            _str("version", "The resource's entity tag.", case_exact=True, mutability="readOnly"),
        ),
    ),
    _str(
        "schemas",
        "The schema URNs the resource conforms to.",
        multi_valued=True,
        case_exact=True,
    ),
)
"""Attributes of every resource (RFC 7643 §3, §3.1), not listed by any schema."""

_NAME = Attribute(
    "name",
    "complex",
    description="The components of the user's real name.",
    sub_attributes=(
        _str("formatted", "The full name, formatted for display."),
        _str("familyName", "The family name of the User."),
        _str("givenName", "The given name of the User."),
        _str("middleName", "The middle name(s) of the User."),
        _str("honorificPrefix", "The honorific prefix(es) of the User."),
        _str("honorificSuffix", "The honorific suffix(es) of the User."),
    ),
)

_ADDRESSES = Attribute(
    "addresses",
    "complex",
    multi_valued=True,
    description="A physical mailing address for this User.",
    sub_attributes=(
        _str("formatted", "The full mailing address, formatted for display."),
        _str("streetAddress", "The full street address component."),
        _str("locality", "The city or locality component."),
        _str("region", "The state or region component."),
        _str("postalCode", "The zip code or postal code component."),
        _str("country", "The country name component."),
        _str(
            "type",
            "A label indicating the address's function.",
            canonical_values=("work", "home", "other"),
        ),
        Attribute("primary", "boolean", description="Whether this is the primary address."),
    ),
)

_GROUPS = Attribute(
    "groups",
    "complex",
    multi_valued=True,
    mutability="readOnly",
    description="Groups the user belongs to, directly or indirectly.",
    sub_attributes=(
        _str("value", "The identifier of the User's group.", mutability="readOnly"),
        Attribute(
            "$ref",
            "reference",
            mutability="readOnly",
            reference_types=("User", "Group"),
            description="The URI of the corresponding Group resource.",
        ),
        _str("display", "A human-readable name of the group.", mutability="readOnly"),
        _str(
            "type",
            "How the membership was derived.",
            mutability="readOnly",
            canonical_values=("direct", "indirect"),
        ),
    ),
)

CORE_USER = Schema(
    id=USER_URN,
    name="User",
    description="User Account",
    attributes=(
        _str("userName", "Unique identifier for the User.", required=True, uniqueness="server"),
        _NAME,
        _str("displayName", "The name of the User, suitable for display to end-users."),
        _str("nickName", "The casual way to address the user."),
        Attribute(
            "profileUrl",
            "reference",
            reference_types=("external",),
            description="A fully qualified URL pointing to the User's profile.",
        ),
        _str("title", "The user's title, such as 'Vice President'."),
        _str("userType", "The relationship between the organization and the user."),
        _str("preferredLanguage", "The User's preferred written or spoken language."),
        _str("locale", "The User's default location, for localization."),
        _str("timezone", "The User's time zone in the 'Olson' time zone database format."),
        Attribute("active", "boolean", description="The User's administrative status."),
        _str(
            "password", "The User's cleartext password.", mutability="writeOnly", returned="never"
        ),
        _plural("emails", "Email addresses for the user.", types=("work", "home", "other")),
        _plural(
            "phoneNumbers",
            "Phone numbers for the User.",
            types=("work", "home", "mobile", "fax", "pager", "other"),
        ),
        _plural(
            "ims",
            "Instant messaging addresses for the User.",
            types=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _plural(
            "photos",
            "URLs of images of the User.",
            types=("photo", "thumbnail"),
            value=Attribute(
                "value",
                "reference",
                reference_types=("external",),
                description="URL of a photo of the User.",
            ),
        ),
        _ADDRESSES,
        _GROUPS,
        _plural("entitlements", "A list of entitlements for the User."),
        _plural("roles", "A list of roles for the User."),
        _plural(
            "x509Certificates",
            "A list of certificates issued to the User.",
            value=Attribute("value", "binary", description="The value of an X.509 certificate."),
        ),
    ),
)

ENTERPRISE_USER = Schema(
    id=ENTERPRISE_USER_URN,
    name="EnterpriseUser",
    description="Enterprise User",
    attributes=(
        _str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
        _str("costCenter", "Identifies the name of a cost center."),
        _str("organization", "Identifies the name of an organization."),
        _str("division", "Identifies the name of a division."),
        _str("department", "Identifies the name of a department."),
        Attribute(
            "manager",
            "complex",
            description="The User's manager.",
            sub_attributes=(
                _str("value", "The id of the SCIM resource representing the User's manager."),
                Attribute(
                    "$ref",
                    "reference",
                    reference_types=("User",),
                    description="The URI of the manager's User resource.",
                ),
                _str(
                    "displayName", "The displayName of the User's manager.", mutability="readOnly"
                ),
            ),
        ),
    ),
)

CORE_GROUP = Schema(
    id=GROUP_URN,
    name="Group",
    description="Group",
    attributes=(
        _str("displayName", "A human-readable name for the Group.", required=True),
        Attribute(
            "members",
            "complex",
            multi_valued=True,
            description="A list of members of the Group.",
            sub_attributes=(
                _str("value", "Identifier of the member of this Group.", mutability="immutable"),
                Attribute(
                    "$ref",
                    "reference",
                    mutability="immutable",
                    reference_types=("User", "Group"),
                    description="The URI of the member resource.",
                ),
                _str(
                    "type",
                    "The type of the member.",
                    mutability="immutable",
                    canonical_values=("User", "Group"),
                ),
                _str("display", "A human-readable name of the member.", mutability="readOnly"),
            ),
        ),
    ),
)
