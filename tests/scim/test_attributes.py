"""SCIM schema definitions (RFC 7643 §4, §6, §7, §8.7.1)."""

from __future__ import annotations

import pytest

from bridge.scim.attributes import Attribute, Schema
from bridge.scim.core_schemas import (
    COMMON_ATTRIBUTES,
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    ENTERPRISE_USER_URN,
    GROUP_URN,
    USER_URN,
)
from bridge.scim.resource_types import build_resource_types

BASE = "https://bridge.example.com/scim/v2"

CUSTOM = {
    "id": "urn:example:params:scim:schemas:extension:contoso:2.0:User",
    "name": "ContosoUser",
    "description": "Contoso attributes",
    "attributes": [
        {"name": "badgeId", "type": "string", "caseExact": True, "uniqueness": "server"},
        {
            "name": "badges",
            "type": "complex",
            "multiValued": True,
            "subAttributes": [{"name": "value", "type": "integer"}],
        },
    ],
}


@pytest.fixture
def user():
    return build_resource_types()["User"]


@pytest.fixture
def group():
    return build_resource_types()["Group"]


def test_core_user_lists_every_rfc_attribute():
    """RFC 7643 §4.1 and §8.7.1 define these User attributes, in this order."""
    assert [a.name for a in CORE_USER.attributes] == [
        "userName", "name", "displayName", "nickName", "profileUrl", "title", "userType",
        "preferredLanguage", "locale", "timezone", "active", "password", "emails",
        "phoneNumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles",
        "x509Certificates",
    ]  # fmt: skip


def test_user_name_is_required_and_server_unique():
    """RFC 7643 §8.7.1: userName is required, caseExact false, uniqueness server."""
    attr = CORE_USER.attribute("userName")
    assert (attr.required, attr.case_exact, attr.uniqueness) == (True, False, "server")


def test_password_is_write_only_and_never_returned():
    """RFC 7643 §4.1.1: password is never returned."""
    attr = CORE_USER.attribute("password")
    assert (attr.mutability, attr.returned) == ("writeOnly", "never")


def test_groups_and_their_sub_attributes_are_read_only():
    """RFC 7643 §4.1.2: groups is read-only, managed through the Group resource."""
    groups = CORE_USER.attribute("groups")
    assert groups.mutability == "readOnly"
    assert [s.name for s in groups.sub_attributes] == ["value", "$ref", "display", "type"]
    assert {s.mutability for s in groups.sub_attributes} == {"readOnly"}


def test_address_sub_attributes():
    addresses = CORE_USER.attribute("addresses")
    assert [s.name for s in addresses.sub_attributes] == [
        "formatted", "streetAddress", "locality", "region", "postalCode", "country", "type",
        "primary",
    ]  # fmt: skip


def test_email_type_canonical_values():
    assert CORE_USER.attribute("emails").sub("type").canonical_values == ("work", "home", "other")


def test_attribute_lookup_ignores_case():
    """RFC 7643 §2.1: attribute names are case-insensitive."""
    assert CORE_USER.attribute("USERNAME").name == "userName"
    assert CORE_USER.attribute("name").sub("GIVENNAME").name == "givenName"


def test_attribute_lookup_returns_none_for_unknown_name():
    assert CORE_USER.attribute("shoeSize") is None
    assert CORE_USER.attribute("name").sub("nickname") is None


def test_enterprise_manager_display_name_is_read_only():
    """RFC 7643 §4.3: manager.displayName is read-only."""
    manager = ENTERPRISE_USER.attribute("manager")
    assert manager.sub("displayName").mutability == "readOnly"
    assert manager.sub("$ref").reference_types == ("User",)


def test_group_display_name_is_required():
    """RFC 7643 §4.2: displayName is REQUIRED."""
    assert CORE_GROUP.attribute("displayName").required is True


def test_group_member_value_and_type_are_immutable():
    members = CORE_GROUP.attribute("members")
    assert members.sub("value").mutability == "immutable"
    assert members.sub("type").canonical_values == ("User", "Group")
    assert members.sub("display").mutability == "readOnly"


def test_id_is_read_only_case_exact_and_always_returned():
    """RFC 7643 §3.1: id is assigned by the service provider and always returned."""
    id_ = next(a for a in COMMON_ATTRIBUTES if a.name == "id")
    assert (id_.mutability, id_.case_exact, id_.returned, id_.uniqueness) == (
        "readOnly",
        True,
        "always",
        "server",
    )


def test_schemas_do_not_list_common_attributes():
    """RFC 7643 §8.7.1 leaves id, externalId and meta out of the schema definitions."""
    for schema in (CORE_USER, CORE_GROUP, ENTERPRISE_USER):
        names = {a["name"] for a in schema.to_scim(BASE)["attributes"]}
        assert not names & {"id", "externalId", "meta", "schemas"}


def test_attribute_to_scim_uses_rfc_keys():
    """RFC 7643 §7 attribute characteristics."""
    body = CORE_USER.attribute("emails").to_scim()
    assert body["name"] == "emails"
    assert body["type"] == "complex"
    assert body["multiValued"] is True
    assert body["required"] is False
    assert body["caseExact"] is False
    assert (body["mutability"], body["returned"], body["uniqueness"]) == (
        "readWrite",
        "default",
        "none",
    )
    assert [s["name"] for s in body["subAttributes"]] == ["value", "display", "type", "primary"]
    assert body["subAttributes"][2]["canonicalValues"] == ["work", "home", "other"]


def test_reference_attribute_to_scim_lists_reference_types():
    assert CORE_USER.attribute("profileUrl").to_scim()["referenceTypes"] == ["external"]


def test_schema_to_scim_is_a_schema_resource():
    """RFC 7643 §7: a Schema resource with meta.resourceType "Schema"."""
    body = CORE_USER.to_scim(BASE + "/")
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
    assert body["id"] == USER_URN
    assert body["name"] == "User"
    assert body["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{USER_URN}"}


def test_schema_round_trips_through_scim():
    assert Schema.from_scim(CORE_USER.to_scim(BASE)) == CORE_USER


def test_schema_from_scim_parses_a_custom_extension():
    schema = Schema.from_scim(CUSTOM)
    assert schema.attribute("badgeId") == Attribute("badgeId", case_exact=True, uniqueness="server")
    assert schema.attribute("badges").sub("value").type == "integer"


@pytest.mark.parametrize(
    "change",
    [
        {"id": "not-a-urn"},
        {"id": None},
        {"attributes": "nope"},
        {"attributes": [{"type": "string"}]},
        {"attributes": [{"name": "1st"}]},
        {"attributes": [{"name": "a", "type": "text"}]},
        {"attributes": [{"name": "a", "mutability": "sometimes"}]},
        {"attributes": [{"name": "a", "multiValued": "yes"}]},
        {"attributes": [{"name": "a", "canonicalValues": "x"}]},
        {"attributes": [{"name": "a"}, {"name": "A"}]},
        {"attributes": [{"name": "a", "subAttributes": [{"name": "b"}]}]},
        {
            "attributes": [
                {
                    "name": "a",
                    "type": "complex",
                    "subAttributes": [
                        {"name": "b", "type": "complex", "subAttributes": [{"name": "c"}]}
                    ],
                }
            ]
        },
        {"name": 5},
    ],
)
def test_schema_from_scim_rejects_malformed_documents(change):
    with pytest.raises(ValueError):
        Schema.from_scim({**CUSTOM, **change})


def test_schema_from_scim_rejects_non_object():
    with pytest.raises(ValueError):
        Schema.from_scim(["not", "a", "schema"])  # type: ignore[arg-type]


def test_user_resource_type_has_optional_enterprise_extension(user):
    """RFC 7643 §8.7.2 resource type representation."""
    assert user.schema_ids() == (USER_URN, ENTERPRISE_USER_URN)
    assert user.extensions == ((ENTERPRISE_USER, False),)


def test_build_resource_types_adds_configured_extensions():
    custom = Schema.from_scim(CUSTOM)
    types = build_resource_types([custom], [custom])
    assert types["User"].schema_ids() == (USER_URN, ENTERPRISE_USER_URN, custom.id)
    assert types["Group"].schema_ids() == (GROUP_URN, custom.id)


def test_build_resource_types_rejects_duplicate_extension():
    with pytest.raises(ValueError):
        build_resource_types([ENTERPRISE_USER])


def test_extension_lookup_ignores_case(user):
    assert user.extension(ENTERPRISE_USER_URN.upper()) is ENTERPRISE_USER
    assert user.extension("urn:example:unknown") is None


def test_resource_type_to_scim(user):
    """RFC 7643 §6: ResourceType resource with schemaExtensions."""
    assert user.to_scim(BASE) == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_URN,
        "schemaExtensions": [{"schema": ENTERPRISE_USER_URN, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"},
    }


def test_resolve_core_attribute(user):
    path = user.resolve(None, "USERNAME")
    assert (path.schema, path.attribute.name, path.sub_attribute) == (CORE_USER, "userName", None)
    assert path.is_extension is False


def test_resolve_sub_attribute(user):
    path = user.resolve(None, "name", "familyname")
    assert path.sub_attribute.name == "familyName"


def test_resolve_common_attributes_for_both_types(user, group):
    """RFC 7643 §3.1: id, externalId and meta belong to every resource."""
    for rtype in (user, group):
        assert rtype.resolve(None, "id").attribute.case_exact is True
        assert rtype.resolve(None, "externalId").attribute.case_exact is True
        assert rtype.resolve(None, "meta", "lastModified").sub_attribute.type == "dateTime"
        assert rtype.resolve(None, "schemas").attribute.multi_valued is True


def test_resolve_extension_attribute(user):
    path = user.resolve(ENTERPRISE_USER_URN, "employeeNumber")
    assert path.schema is ENTERPRISE_USER
    assert path.is_extension is True


def test_resolve_returns_none_for_unknown_names(user, group):
    assert user.resolve(None, "members") is None
    assert user.resolve(None, "name", "nope") is None
    assert user.resolve("urn:example:unknown", "userName") is None
    assert group.resolve(ENTERPRISE_USER_URN, "department") is None


@pytest.mark.parametrize(
    ("text", "attr", "sub", "extension"),
    [
        ("userName", "userName", None, False),
        ("name.givenName", "name", "givenName", False),
        ("emails.value", "emails", "value", False),
        ("members", None, None, None),
        (f"{USER_URN}:userName", "userName", None, False),
        (f"{USER_URN.upper()}:name.familyName", "name", "familyName", False),
        (f"{ENTERPRISE_USER_URN}:employeeNumber", "employeeNumber", None, True),
        (f"{ENTERPRISE_USER_URN}:manager.value", "manager", "value", True),
        (f"{ENTERPRISE_USER_URN}:userName", None, None, None),
        ("urn:example:unknown:userName", None, None, None),
        ("name.", None, None, None),
        ("", None, None, None),
    ],
)
def test_resolve_path_text(user, text, attr, sub, extension):
    path = user.resolve_path_text(text)
    if attr is None:
        assert path is None
        return
    assert path.attribute.name == attr
    assert (path.sub_attribute.name if path.sub_attribute else None) == sub
    assert path.is_extension is extension
