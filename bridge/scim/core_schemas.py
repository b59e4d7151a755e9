"""The schemas RFC 7643 defines: common attributes, core User and Group, enterprise User.

The core User and Group schemas follow RFC 7643 §8.7.1, the enterprise User extension
§4.3. The common attributes ``id``, ``externalId``, ``meta`` (§3.1) and ``schemas`` (§3)
belong to every resource but to no schema, so they live in :data:`COMMON_ATTRIBUTES`,
which :meth:`~bridge.scim.resource_types.ResourceType.resolve` consults before the core
schema.
"""

from __future__ import annotations

from typing import Any

from bridge.scim import urns
from bridge.scim.attributes import Attribute, MutabilityRule, Schema

USER_URN = urns.USER
ENTERPRISE_USER_URN = urns.ENTERPRISE_USER
GROUP_URN = urns.GROUP


def _str(name: str, description: str = "", **kw: Any) -> Attribute:
    return Attribute(name, "string", description=description, **kw)


def _plural(
    name: str,
    description: str,
    *,
    value: Attribute | None = None,
    types: tuple[str, ...] = (),
    mutability: MutabilityRule = "readWrite",
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
