"""PATCH (RFC 7644 §3.5.2) as Microsoft Entra ID and the RFC's own examples send it."""

from __future__ import annotations

import copy

import pytest

from bridge.scim.attributes import Attribute, Schema
from bridge.scim.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
)
from bridge.scim.patch import PATCH_OP_URN, parse_operations
from bridge.scim.patch_apply import apply_operations
from bridge.scim.patch_members import MemberChanges, split_member_operations
from bridge.scim.paths import parse_patch_path
from bridge.scim.resource_types import build_resource_types

TYPES = build_resource_types()
USERS = TYPES["User"]
GROUPS = TYPES["Group"]
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER_ID = "26118915-6090-4610-87e4-49d8ca9f808d"


def member_id(n: int) -> str:
    """An id of the shape the directory makes (a UUIDv7): members must name one."""
    return f"0190c0de-0000-7000-8000-{n:012d}"


BJENSEN = member_id(1)
JSMITH = member_id(2)
ENTRA_USER = member_id(3)


def body(*ops: dict) -> dict:
    return {"schemas": [PATCH_OP_URN], "Operations": list(ops)}


def make_user(**overrides: object) -> dict:
    """A stored user, as the directory keeps it (canonical names, extension under its URN)."""
    doc: dict = {
        "schemas": [USER_URN],
        "id": BJENSEN,
        "userName": "bjensen@example.com",
        "active": True,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z"},
    }
    doc.update(overrides)
    doc["schemas"] += [key for key in overrides if key.startswith("urn:")]
    return doc


def patch_user(doc: dict, *ops: dict) -> bool:
    """Run ops through the whole pipeline on ``doc`` in place; return ``changed``."""
    doc_ops, changes = split_member_operations(parse_operations(body(*ops)), USERS)
    assert changes.empty
    return apply_operations(doc, doc_ops, USERS)


def patch_group(doc: dict, *ops: dict) -> MemberChanges:
    doc_ops, changes = split_member_operations(parse_operations(body(*ops)), GROUPS)
    apply_operations(doc, doc_ops, GROUPS)
    return changes


def make_group() -> dict:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales"}


# --- Microsoft Entra ID ---------------------------------------------------------------------


def test_entra_replaces_work_email_value() -> None:
    """Entra sends Replace emails[type eq "work"].value (tutorial, multi-valued properties)."""
    doc = make_user()
    changed = patch_user(
        doc,
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": "updatedEmail@microsoft.com",
        },
    )
    assert changed
    assert doc["emails"] == [
        {"value": "updatedEmail@microsoft.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ]


def test_entra_replaces_family_name_keeping_given_name() -> None:
    """Entra sends Replace name.familyName (tutorial, multi-valued properties)."""
    doc = make_user()
    patch_user(doc, {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"})
    assert doc["name"] == {"givenName": "Barbara", "familyName": "updatedFamilyName"}


def test_entra_replaces_user_name() -> None:
    """Entra sends Replace userName (tutorial, single-valued properties)."""
    doc = make_user()
    new = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    assert patch_user(doc, {"op": "Replace", "path": "userName", "value": new})
    assert doc["userName"] == new


def test_entra_disables_user() -> None:
    """Entra sends Replace active false (tutorial, disable user)."""
    doc = make_user()
    assert patch_user(doc, {"op": "Replace", "path": "active", "value": False})
    assert doc["active"] is False


def test_entra_string_boolean_with_path_becomes_boolean() -> None:
    """Entra sends "value": "False" for active."""
    doc = make_user()
    patch_user(doc, {"op": "Replace", "path": "active", "value": "False"})
    assert doc["active"] is False


def test_entra_pathless_replace_of_several_attributes() -> None:
    """Entra sends a path-less replace of displayName and active (SCIM compliance)."""
    doc = make_user()
    patch_user(doc, {"op": "replace", "value": {"displayName": "Babs", "active": False}})
    assert doc["displayName"] == "Babs"
    assert doc["active"] is False


def test_entra_pathless_string_boolean_becomes_boolean() -> None:
    """Entra sends {"op": "Replace", "value": {"active": "False"}} (aadOptscim062020)."""
    doc = make_user()
    assert patch_user(doc, {"op": "Replace", "value": {"active": "False"}})
    assert doc["active"] is False


def test_entra_string_primary_becomes_boolean() -> None:
    """Entra sends "primary": "True" inside multi-valued values."""
    doc = make_user()
    patch_user(
        doc,
        {"op": "Add", "path": "roles", "value": [{"value": "Admin", "primary": "True"}]},
    )
    assert doc["roles"] == [{"value": "Admin", "primary": True}]


def test_entra_adds_members() -> None:
    """Entra sends Add members with "$ref": null (tutorial, update group: add members)."""
    changes = patch_group(
        make_group(),
        {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": ENTRA_USER}],
        },
    )
    assert changes == MemberChanges([{"value": ENTRA_USER}], [], None)


def test_entra_removes_members_listed_in_value() -> None:
    """Entra sends Remove members with the ids in value (tutorial, remove members)."""
    changes = patch_group(
        make_group(),
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": ENTRA_USER}]},
    )
    assert changes == MemberChanges([], [ENTRA_USER], None)


def test_entra_removes_member_by_value_filter() -> None:
    """Entra sends Remove members[value eq "id"] (SCIM compliance, aadOptscim062020)."""
    changes = patch_group(make_group(), {"op": "Remove", "path": f'members[value eq "{BJENSEN}"]'})
    assert changes == MemberChanges([], [BJENSEN], None)


def test_entra_removes_members_by_or_of_value_filters() -> None:
    """A value filter may list several members joined by or (RFC 7644 §3.4.2.2)."""
    path = f'members[value eq "{BJENSEN}" or value eq "{JSMITH}"]'
    changes = patch_group(make_group(), {"op": "remove", "path": path})
    assert changes.remove == [BJENSEN, JSMITH]


def test_entra_replaces_manager_by_path_with_bare_id() -> None:
    """Entra sends the enterprise manager as a bare id (SCIM compliance)."""
    doc = make_user()
    patch_user(doc, {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": MANAGER_ID})
    assert doc[ENTERPRISE] == {"manager": {"value": MANAGER_ID}}
    assert ENTERPRISE in doc["schemas"]


def test_entra_replaces_manager_by_path_with_object() -> None:
    """Entra sends the manager as {"value": id} in the RFC-compliant dialect."""
    doc = make_user()
    patch_user(doc, {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "m2"}})
    assert doc[ENTERPRISE]["manager"] == {"value": "m2"}


def test_entra_pathless_manager_bare_id() -> None:
    """Entra sends {"urn:...:User:manager": "id"} in a path-less replace."""
    doc = make_user()
    patch_user(doc, {"op": "Replace", "value": {f"{ENTERPRISE}:manager": MANAGER_ID}})
    assert doc[ENTERPRISE]["manager"] == {"value": MANAGER_ID}


def test_entra_adds_work_email_to_user_without_one() -> None:
    """Entra sends Add emails[type eq "work"].value when the user has no work e-mail."""
    doc = make_user(emails=[{"value": "babs@jensen.org", "type": "home"}])
    patch_user(doc, {"op": "Add", "path": 'emails[type eq "work"].value', "value": "b@example.com"})
    assert doc["emails"] == [
        {"value": "babs@jensen.org", "type": "home"},
        {"type": "work", "value": "b@example.com"},
    ]


def test_entra_replace_creates_missing_mobile_phone() -> None:
    """Entra sends Replace phoneNumbers[type eq "mobile"].value for a user without one."""
    doc = make_user()
    patch_user(
        doc, {"op": "Replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555"}
    )
    assert doc["phoneNumbers"] == [{"type": "mobile", "value": "+1 555"}]


def test_entra_pathless_add_with_path_keys() -> None:
    """Entra's path-less add uses attribute paths, value filters and URNs as keys."""
    doc = make_user(emails=[])
    patch_user(
        doc,
        {
            "op": "Add",
            "value": {
                'emails[type eq "work"].value': "w@example.com",
                "name.givenName": "Babs",
                f"{ENTERPRISE}:employeeNumber": "701984",
            },
        },
    )
    assert doc["emails"] == [{"type": "work", "value": "w@example.com"}]
    assert doc["name"]["givenName"] == "Babs"
    assert doc[ENTERPRISE] == {"employeeNumber": "701984"}


def test_entra_remove_of_absent_member_filter_is_idempotent() -> None:
    """Entra repeats removals: a value filter matching nothing is a no-op, not noTarget."""
    doc = make_user()
    assert not patch_user(doc, {"op": "Remove", "path": 'emails[type eq "other"]'})


# --- RFC 7644 §3.5.2.1 add ------------------------------------------------------------------


def test_rfc_add_member() -> None:
    """RFC 7644 §3.5.2.1: add a member to a group."""
    member = {
        "display": "Babs Jensen",
        "$ref": f"https://example.com/v2/Users/{BJENSEN}",
        "value": BJENSEN,
    }
    changes = patch_group(make_group(), {"op": "add", "path": "members", "value": [member]})
    assert changes.add == [member]
    assert changes.remove == [] and changes.replace is None


def test_rfc_add_without_path() -> None:
    """RFC 7644 §3.5.2.1: path-less add of emails and nickname; names become canonical."""
    doc = make_user(emails=[{"value": "bjensen@example.com", "type": "work"}])
    patch_user(
        doc,
        {
            "op": "add",
            "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"},
        },
    )
    assert doc["nickName"] == "Babs"
    assert "nickname" not in doc
    assert doc["emails"] == [
        {"value": "bjensen@example.com", "type": "work"},
        {"value": "babs@jensen.org", "type": "home"},
    ]


def test_rfc_add_skips_values_already_present() -> None:
    """RFC 7644 §3.5.2.1: adding a value that exists does not duplicate it."""
    doc = make_user()
    existing = copy.deepcopy(doc["emails"][1])
    assert not patch_user(doc, {"op": "add", "path": "emails", "value": [existing]})
    assert len(doc["emails"]) == 2


def test_rfc_add_to_complex_merges_sub_attributes() -> None:
    """RFC 7644 §3.5.2.1: adding to a complex attribute sets only the given sub-attributes."""
    doc = make_user()
    patch_user(doc, {"op": "add", "path": "name", "value": {"middleName": "Jane"}})
    assert doc["name"] == {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"}


def test_add_primary_email_demotes_previous_primary() -> None:
    """RFC 7643 §2.4: the primary value true appears no more than once."""
    doc = make_user()
    new = {"value": "new@example.com", "type": "other", "primary": True}
    patch_user(doc, {"op": "add", "path": "emails", "value": new})
    assert [e.get("primary") for e in doc["emails"]] == [False, None, True]


# --- RFC 7644 §3.5.2.2 remove ---------------------------------------------------------------


def test_rfc_remove_single_member() -> None:
    """RFC 7644 §3.5.2.2: remove one member by value filter."""
    changes = patch_group(make_group(), {"op": "remove", "path": f'members[value eq "{BJENSEN}"]'})
    assert changes.remove == [BJENSEN]


def test_rfc_remove_all_members() -> None:
    """RFC 7644 §3.5.2.2: remove without a value filter removes every member."""
    changes = patch_group(make_group(), {"op": "remove", "path": "members"})
    assert changes == MemberChanges([], [], [])


def test_rfc_remove_multiple_members() -> None:
    """RFC 7644 §3.5.2.2: several remove operations in one request."""
    changes = patch_group(
        make_group(),
        {"op": "remove", "path": f'members[value eq "{BJENSEN}"]'},
        {"op": "remove", "path": f'members[value eq "{JSMITH}"]'},
    )
    assert changes.remove == [BJENSEN, JSMITH]


def test_rfc_remove_all_members_then_add_is_a_replace() -> None:
    """RFC 7644 §3.5.2.2: remove all members, then add one, replaces the membership."""
    changes = patch_group(
        make_group(),
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": JSMITH}]},
    )
    assert changes == MemberChanges([], [], [{"value": JSMITH}])


def test_rfc_remove_emails_by_filter() -> None:
    """RFC 7644 §3.5.2.2: remove the values a filter selects."""
    doc = make_user()
    path = 'emails[type eq "work" and value ew "example.com"]'
    assert patch_user(doc, {"op": "remove", "path": path})
    assert doc["emails"] == [{"value": "babs@jensen.org", "type": "home"}]


def test_remove_last_matching_value_drops_attribute() -> None:
    """RFC 7643 §2.5: an empty multi-valued attribute is unassigned, so it is removed."""
    doc = make_user(emails=[{"value": "bjensen@example.com", "type": "work"}])
    patch_user(doc, {"op": "remove", "path": 'emails[type eq "work"]'})
    assert "emails" not in doc


def test_remove_filtered_value_sub_attribute_drops_hollow_element() -> None:
    """Entra sends Remove emails[type eq "work"].value when the mail is cleared."""
    doc = make_user()
    patch_user(doc, {"op": "Remove", "path": 'emails[type eq "work"].value'})
    assert doc["emails"] == [{"value": "babs@jensen.org", "type": "home"}]


def test_remove_filtered_sub_attribute_keeps_rest_of_element() -> None:
    """RFC 7644 §3.5.2.2: removing a sub-attribute of matched values leaves the others."""
    address = {"type": "work", "postalCode": "91608", "locality": "Hollywood"}
    doc = make_user(addresses=[address])
    patch_user(doc, {"op": "remove", "path": 'addresses[type eq "work"].postalCode'})
    assert doc["addresses"] == [{"type": "work", "locality": "Hollywood"}]


def test_remove_attribute() -> None:
    """RFC 7644 §3.5.2.2: remove a single-valued attribute."""
    doc = make_user(title="Tour Guide")
    assert patch_user(doc, {"op": "remove", "path": "title"})
    assert "title" not in doc


def test_remove_absent_attribute_is_no_op() -> None:
    """Removing what is not there changes nothing, so Entra's repeats are harmless."""
    assert not patch_user(make_user(), {"op": "remove", "path": "title"})


def test_remove_manager_drops_empty_extension() -> None:
    """Entra sends Remove of the enterprise manager; an empty extension object goes too."""
    doc = make_user(**{ENTERPRISE: {"manager": {"value": MANAGER_ID}}})
    patch_user(doc, {"op": "Remove", "path": f"{ENTERPRISE}:manager"})
    assert ENTERPRISE not in doc


def test_remove_manager_value_sub_attribute() -> None:
    """A path may name a sub-attribute of an extension attribute: manager.value."""
    doc = make_user(**{ENTERPRISE: {"department": "Tour", "manager": {"value": MANAGER_ID}}})
    patch_user(doc, {"op": "remove", "path": f"{ENTERPRISE}:manager.value"})
    assert doc[ENTERPRISE] == {"department": "Tour"}


def test_remove_listed_values_of_multi_valued_attribute() -> None:
    """Entra's default dialect: Remove with a value removes just the listed values."""
    doc = make_user(roles=[{"value": "Admin"}, {"value": "Reader"}])
    patch_user(doc, {"op": "Remove", "path": "roles", "value": [{"value": "Admin"}]})
    assert doc["roles"] == [{"value": "Reader"}]


# --- RFC 7644 §3.5.2.3 replace --------------------------------------------------------------


def test_rfc_replace_members() -> None:
    """RFC 7644 §3.5.2.3: replace all members of a group."""
    members = [
        {
            "display": "Babs Jensen",
            "$ref": f"https://example.com/v2/Users/{BJENSEN}",
            "value": BJENSEN,
        },
        {
            "display": "James Smith",
            "$ref": f"https://example.com/v2/Users/{JSMITH}",
            "value": JSMITH,
        },
    ]
    changes = patch_group(make_group(), {"op": "replace", "path": "members", "value": members})
    assert changes == MemberChanges([], [], members)


def test_rfc_replace_work_address() -> None:
    """RFC 7644 §3.5.2.3: replace the value a filter selects with a whole new value."""
    doc = make_user(addresses=[{"type": "work", "streetAddress": "100 Main St", "region": "NY"}])
    work = {
        "type": "work",
        "streetAddress": "911 Universal City Plaza",
        "locality": "Hollywood",
        "region": "CA",
        "postalCode": "91608",
        "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
        "primary": True,
    }
    patch_user(doc, {"op": "replace", "path": 'addresses[type eq "work"]', "value": work})
    assert doc["addresses"] == [work]


def test_rfc_replace_work_street_address() -> None:
    """RFC 7644 §3.5.2.3: replace a sub-attribute of the values a filter selects."""
    doc = make_user(addresses=[{"type": "work", "streetAddress": "100 Main St"}, {"type": "home"}])
    patch_user(
        doc,
        {
            "op": "replace",
            "path": 'addresses[type eq "work"].streetAddress',
            "value": "1010 Broadway Ave",
        },
    )
    assert doc["addresses"] == [
        {"type": "work", "streetAddress": "1010 Broadway Ave"},
        {"type": "home"},
    ]


def test_rfc_replace_without_path() -> None:
    """RFC 7644 §3.5.2.3: path-less replace sets each attribute in the value."""
    doc = make_user(emails=[{"value": "old@example.com", "type": "work"}])
    emails = [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ]
    patch_user(doc, {"op": "replace", "value": {"emails": emails, "nickname": "Babs"}})
    assert doc["emails"] == emails
    assert doc["nickName"] == "Babs"


def test_replace_multi_valued_attribute_replaces_whole_list() -> None:
    """RFC 7644 §3.5.2.3: replace of a multi-valued attribute replaces all its values."""
    doc = make_user()
    patch_user(doc, {"op": "replace", "path": "emails", "value": [{"value": "x@example.com"}]})
    assert doc["emails"] == [{"value": "x@example.com"}]


def test_replace_filter_matching_nothing_without_equality_is_no_target() -> None:
    """RFC 7644 §3.5.2.3: no match for a filter that names no element gives noTarget."""
    with pytest.raises(NoTarget):
        patch_user(
            make_user(),
            {"op": "replace", "path": 'emails[value co "nowhere"].display', "value": "x"},
        )


def test_replace_with_null_clears_attribute() -> None:
    """RFC 7643 §2.5: null is equivalent to unassigned."""
    doc = make_user(title="Tour Guide")
    patch_user(doc, {"op": "replace", "path": "title", "value": None})
    assert "title" not in doc


def test_replace_with_two_primaries_is_invalid() -> None:
    """RFC 7643 §2.4: primary true appears no more than once."""
    emails = [{"value": "a@x.com", "primary": True}, {"value": "b@x.com", "primary": True}]
    with pytest.raises(InvalidValue):
        patch_user(make_user(), {"op": "replace", "path": "emails", "value": emails})


def test_replace_primary_through_filter_demotes_others() -> None:
    """RFC 7643 §2.4: making the home e-mail primary clears the work one."""
    doc = make_user()
    patch_user(doc, {"op": "replace", "path": 'emails[type eq "home"].primary', "value": "True"})
    assert [e["primary"] for e in doc["emails"]] == [False, True]


# --- Changed or not -------------------------------------------------------------------------


def test_replace_with_existing_value_reports_no_change() -> None:
    """Setting the current value changes nothing, so no event is emitted."""
    doc = make_user()
    before = copy.deepcopy(doc)
    assert not patch_user(doc, {"op": "Replace", "path": "userName", "value": doc["userName"]})
    assert doc == before


def test_entra_pathless_replace_with_current_values_reports_no_change() -> None:
    """Entra re-sends unchanged attributes; "True" equals the stored true."""
    doc = make_user()
    assert not patch_user(
        doc, {"op": "Replace", "value": {"active": "True", "name.givenName": "Barbara"}}
    )


# --- Extensions ---------------------------------------------------------------------------


def test_add_extension_attribute_declares_schema() -> None:
    """RFC 7643 §3: a resource lists the extension schemas it uses in schemas."""
    doc = make_user()
    patch_user(doc, {"op": "add", "path": f"{ENTERPRISE}:employeeNumber", "value": "701984"})
    assert doc["schemas"] == [USER_URN, ENTERPRISE]
    assert doc[ENTERPRISE] == {"employeeNumber": "701984"}


def test_pathless_extension_object_sets_its_attributes() -> None:
    """RFC 7644 §3.5.2.1: a path-less value may hold an extension's attributes under its URN."""
    doc = make_user(**{ENTERPRISE: {"department": "Tour"}})
    patch_user(
        doc, {"op": "replace", "value": {ENTERPRISE: {"costCenter": "4130", "Manager": "m1"}}}
    )
    assert doc[ENTERPRISE] == {
        "department": "Tour",
        "costCenter": "4130",
        "manager": {"value": "m1"},
    }


def test_manager_display_name_in_value_is_ignored() -> None:
    """manager.displayName is readOnly (RFC 7643 §4.3): ignored inside a value."""
    doc = make_user()
    value = {"value": MANAGER_ID, "displayName": "Boss"}
    patch_user(doc, {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": value})
    assert doc[ENTERPRISE]["manager"] == {"value": MANAGER_ID}


# --- Names --------------------------------------------------------------------------------


def test_attribute_names_are_case_insensitive() -> None:
    """RFC 7643 §2.1: attribute names are case-insensitive; stored names are canonical."""
    doc = make_user(displayname="old")
    patch_user(doc, {"op": "replace", "path": "DISPLAYNAME", "value": "Babs"})
    assert doc["displayName"] == "Babs"
    assert "displayname" not in doc


def test_op_names_and_operations_key_are_case_insensitive() -> None:
    """Entra sends "Replace"; "operations" and "REMOVE" are accepted too."""
    ops = parse_operations(
        {
            "schemas": [PATCH_OP_URN],
            "operations": [
                {"op": "REPLACE", "path": "title", "value": "x"},
                {"Op": "Remove", "Path": "nickName"},
            ],
        }
    )
    assert ops == [
        {"op": "replace", "path": "title", "value": "x"},
        {"op": "remove", "path": "nickName"},
    ]


def test_parse_patch_path_value_filter_and_sub_attribute() -> None:
    """RFC 7644 §3.5.2: PATH = valuePath [subAttr]."""
    path = parse_patch_path('emails[type eq "work"].value', USERS)
    assert path.attribute.name == "emails"
    assert path.value_filter is not None
    assert path.sub_attr is not None and path.sub_attr.name == "value"
    assert path.resolved.sub_attribute == path.sub_attr


def test_parse_patch_path_extension_sub_attribute() -> None:
    """RFC 7644 §3.10: an attribute path may carry its schema URN."""
    path = parse_patch_path(f"{ENTERPRISE}:manager.value", USERS)
    assert path.resolved.is_extension
    assert path.value_filter is None
    assert path.sub_attr is not None and path.sub_attr.name == "value"


@pytest.mark.parametrize(
    "text",
    [
        "nosuchAttr",
        "name.nosuch",
        'emails[type eq "work"].nosuch',
        'userName[value eq "x"]',
        'emails[type eq "work"',
        'emails[type eq "work"]x',
        "",
    ],
)
def test_invalid_path_is_rejected(text: str) -> None:
    """RFC 7644 §3.5.2: a malformed or unknown path is invalidPath."""
    with pytest.raises(InvalidPath):
        parse_patch_path(text, USERS)


def test_unknown_path_in_operation_is_invalid_path() -> None:
    """RFC 7644 §3.12: invalidPath for an attribute the resource type lacks."""
    with pytest.raises(InvalidPath):
        patch_user(make_user(), {"op": "add", "path": "favouriteColour", "value": "blue"})


def test_malformed_value_filter_is_invalid_filter() -> None:
    """RFC 7644 §3.12: invalidFilter covers the filter of a PATCH path."""
    with pytest.raises(InvalidFilter):
        parse_patch_path("emails[type eq].value", USERS)


# --- Request validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_body",
    [
        [],
        {"Operations": [{"op": "add", "path": "title", "value": "x"}]},
        {"schemas": ["urn:example"], "Operations": [{"op": "add", "value": {}}]},
        {"schemas": [PATCH_OP_URN], "Operations": []},
        {"schemas": [PATCH_OP_URN], "Operations": {"op": "add"}},
        {"schemas": [PATCH_OP_URN], "Operations": ["add"]},
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "move", "path": "title"}]},
        {"schemas": [PATCH_OP_URN], "Operations": [{"path": "title", "value": "x"}]},
        {"schemas": [PATCH_OP_URN], "Operations": [{"op": "add", "path": 7, "value": "x"}]},
    ],
)
def test_malformed_request_is_invalid_syntax(request_body: object) -> None:
    """RFC 7644 §3.5.2: a PatchOp body has the PatchOp schema and a list of operations."""
    with pytest.raises(InvalidSyntax):
        parse_operations(request_body)


def test_remove_without_path_is_no_target() -> None:
    """RFC 7644 §3.5.2.2: if path is unspecified, remove fails with noTarget."""
    with pytest.raises(NoTarget):
        parse_operations(body({"op": "remove"}))


@pytest.mark.parametrize("op", [{"op": "add", "path": "title"}, {"op": "replace"}])
def test_add_or_replace_without_value_is_invalid_value(op: dict) -> None:
    """RFC 7644 §3.5.2.1, §3.5.2.3: add and replace carry a value."""
    with pytest.raises(InvalidValue):
        parse_operations(body(op))


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "userName", "value": ["a", "b"]},
        {"op": "replace", "path": "active", "value": "maybe"},
        {"op": "replace", "path": "name", "value": "Babs"},
        {"op": "add", "path": "emails", "value": [{"value": "x@y.z", "colour": "red"}]},
        {"op": "replace", "value": "Babs"},
    ],
)
def test_value_of_wrong_type_is_invalid_value(op: dict) -> None:
    """RFC 7644 §3.12: invalidValue for a value incompatible with the attribute."""
    with pytest.raises(InvalidValue):
        patch_user(make_user(), op)


def test_remove_required_attribute_is_invalid_value() -> None:
    """RFC 7643 §4.1.1: userName is required, so it cannot be removed."""
    with pytest.raises(InvalidValue):
        patch_user(make_user(), {"op": "remove", "path": "userName"})


# --- Mutability ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "id", "value": "other"},
        {"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"},
        {"op": "add", "path": "groups", "value": [{"value": "g1"}]},
        {"op": "replace", "value": {"groups": [{"value": "g1"}]}},
        {"op": "replace", "path": f"{ENTERPRISE}:manager.displayName", "value": "Boss"},
        {"op": "add", "path": "schemas", "value": ["urn:example"]},
    ],
)
def test_read_only_attribute_is_mutability_error(op: dict) -> None:
    """RFC 7644 §3.5.2: each operation must be compatible with the attribute's mutability."""
    with pytest.raises(Mutability):
        patch_user(make_user(), op)


def test_pathless_id_meta_and_schemas_are_ignored() -> None:
    """RFC 7643 §3.1: id and meta are assigned by the service provider; a client's are ignored."""
    doc = make_user()
    value = {
        "id": "other",
        "meta": {"created": "2000-01-01T00:00:00Z"},
        "schemas": ["urn:example"],
        "title": "Guide",
    }
    patch_user(doc, {"op": "replace", "value": value})
    assert doc["id"] == BJENSEN
    assert doc["schemas"] == [USER_URN]
    assert doc["meta"]["created"] == "2024-01-01T00:00:00Z"
    assert doc["title"] == "Guide"


BADGE_URN = "urn:example:params:scim:schemas:extension:badge:2.0:User"
BADGES = build_resource_types(
    extra_user_extensions=[
        Schema(BADGE_URN, "Badge", "", (Attribute("badgeId", mutability="immutable"),))
    ]
)["User"]


def test_immutable_attribute_may_be_set_when_absent() -> None:
    """RFC 7643 §2.2: an immutable attribute may be set once."""
    doc = make_user()
    ops = parse_operations(body({"op": "add", "path": f"{BADGE_URN}:badgeId", "value": "B1"}))
    assert apply_operations(doc, ops, BADGES)
    assert doc[BADGE_URN] == {"badgeId": "B1"}


def test_immutable_attribute_cannot_change() -> None:
    """RFC 7643 §2.2: an immutable attribute's value cannot be changed once set."""
    doc = make_user(**{BADGE_URN: {"badgeId": "B1"}})
    ops = parse_operations(body({"op": "replace", "path": f"{BADGE_URN}:badgeId", "value": "B2"}))
    with pytest.raises(Mutability):
        apply_operations(doc, ops, BADGES)


def test_immutable_attribute_set_to_same_value_is_no_change() -> None:
    """RFC 7643 §2.2: re-sending the value an immutable attribute has is not a change."""
    doc = make_user(**{BADGE_URN: {"badgeId": "B1"}})
    ops = parse_operations(body({"op": "replace", "path": f"{BADGE_URN}:badgeId", "value": "B1"}))
    assert not apply_operations(doc, ops, BADGES)


# --- Group membership ---------------------------------------------------------------------


def test_user_operations_pass_through_split_untouched() -> None:
    """Only groups keep membership out of the document."""
    ops = parse_operations(body({"op": "replace", "path": "title", "value": "x"}))
    assert split_member_operations(ops, USERS) == (ops, MemberChanges([], [], None))


def test_pathless_group_replace_splits_members_from_other_attributes() -> None:
    """RFC 7644 §3.5.2.3: path-less replace of members and displayName."""
    doc = make_group()
    changes = patch_group(
        doc, {"op": "replace", "value": {"displayName": "Tour", "members": [{"value": JSMITH}]}}
    )
    assert doc["displayName"] == "Tour"
    assert changes == MemberChanges([], [], [{"value": JSMITH}])


def test_pathless_group_members_inside_core_schema_object() -> None:
    """RFC 7644 §3.5.2.3: a path-less value may nest attributes under the core schema URN."""
    doc = make_group()
    urn = "urn:ietf:params:scim:schemas:core:2.0:Group"
    value = {urn: {"displayName": "Tour", "members": [{"value": JSMITH}]}}
    changes = patch_group(doc, {"op": "replace", "value": value})
    assert doc["displayName"] == "Tour"
    assert "members" not in doc
    assert changes.replace == [{"value": JSMITH}]


def test_pathless_group_op_with_non_object_value_is_invalid_value() -> None:
    """RFC 7644 §3.5.2.1: without a path, the value is an object of attributes."""
    with pytest.raises(InvalidValue):
        patch_group(make_group(), {"op": "add", "value": "Tour"})


def test_pathless_group_add_of_members_only() -> None:
    """RFC 7644 §3.5.2.1: path-less add whose value holds only members."""
    ops = parse_operations(body({"op": "add", "value": {"members": [{"value": BJENSEN}]}}))
    rest, changes = split_member_operations(ops, GROUPS)
    assert rest == []
    assert changes.add == [{"value": BJENSEN}]


def test_remove_then_add_same_member_adds_it_back() -> None:
    """RFC 7644 §3.5.2: operations apply in order."""
    changes = patch_group(
        make_group(),
        {"op": "remove", "path": f'members[value eq "{BJENSEN}"]'},
        {"op": "add", "path": "members", "value": [{"value": BJENSEN}]},
    )
    assert changes == MemberChanges([{"value": BJENSEN}], [], None)


def test_add_then_remove_same_member_removes_it() -> None:
    """RFC 7644 §3.5.2: operations apply in order."""
    changes = patch_group(
        make_group(),
        {"op": "add", "path": "members", "value": [{"value": BJENSEN}]},
        {"op": "remove", "path": f'members[value eq "{BJENSEN}"]'},
    )
    assert changes == MemberChanges([], [BJENSEN], None)


def test_member_keys_are_canonical_and_unknown_ones_dropped() -> None:
    """Entra may send "Value" and a displayName the member schema lacks (RFC 7643 §4.2)."""
    changes = patch_group(
        make_group(),
        {"op": "add", "path": "members", "value": [{"Value": JSMITH, "displayName": "J"}]},
    )
    assert changes.add == [{"value": JSMITH}]


def test_member_without_value_is_invalid_value() -> None:
    """RFC 7643 §4.2: a member is identified by its value."""
    with pytest.raises(InvalidValue):
        patch_group(make_group(), {"op": "add", "path": "members", "value": [{"display": "x"}]})


def test_member_filter_other_than_value_equality_is_invalid_filter() -> None:
    """Members live outside the document; only value eq filters can pick them."""
    with pytest.raises(InvalidFilter):
        patch_group(make_group(), {"op": "remove", "path": 'members[type eq "User"]'})


def test_add_of_three_hundred_members_in_one_operation() -> None:
    """Entra batches membership changes; hundreds of members arrive in one request."""
    members = [{"value": member_id(i)} for i in range(300)]
    changes = patch_group(make_group(), {"op": "Add", "path": "members", "value": members})
    assert changes.add == members


def test_three_hundred_member_operations_fold_in_order() -> None:
    """Entra may send one operation per member; they fold into one change set."""
    ops = [{"op": "Add", "path": "members", "value": [{"value": member_id(i)}]} for i in range(300)]
    ops += [
        {"op": "Remove", "path": f'members[value eq "{member_id(i)}"]'} for i in range(0, 300, 2)
    ]
    changes = patch_group(make_group(), *ops)
    assert [m["value"] for m in changes.add] == [member_id(i) for i in range(1, 300, 2)]
    assert changes.remove == [member_id(i) for i in range(0, 300, 2)]
