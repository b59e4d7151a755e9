"""Mapping expressions: source paths and transforms, evaluated on a sample resource."""

from __future__ import annotations

import copy

import pytest

from bridge.targets.mapping import (
    apply_mapping,
    parse_mapping,
)
from tests.factories import ENTERPRISE, entra_group
from tests.targets.mapping_samples import GROUPS, MANAGER_ID, USERS, mapped, user

# --- Source paths ------------------------------------------------------------------------


def test_attribute_is_copied_under_target_name():
    """A string expression names a source attribute."""
    assert mapped({"login": "userName"}) == {"login": "adele.vance@contoso.com"}


def test_sub_attribute_path_reads_nested_value():
    """``name.givenName`` reads inside a complex attribute (RFC 7644 §3.10)."""
    assert mapped({"firstName": "name.givenName"}) == {"firstName": "Adele"}


def test_dotted_target_writes_nested_object():
    """Target paths nest on dots, and siblings share their parent object."""
    out = mapped({"name.first": "name.givenName", "name.last": "name.familyName"})
    assert out == {"name": {"first": "Adele", "last": "Vance"}}


def test_urn_target_writes_under_the_urn_key():
    """A URN-qualified target keeps the URN (with its dots) as one key."""
    target = f"{ENTERPRISE}:department"
    assert mapped({target: target}) == {ENTERPRISE: {"department": "Retail"}}


def test_urn_target_with_sub_attribute_nests_below_the_urn():
    """``urn:...:manager.value`` writes ``{urn: {"manager": {"value": ...}}}``."""
    target = f"{ENTERPRISE}:manager.value"
    assert mapped({target: target}) == {ENTERPRISE: {"manager": {"value": MANAGER_ID}}}


def test_extension_attribute_is_read_from_its_urn():
    """Extension attributes live under their schema URN (RFC 7643 §3.3)."""
    assert mapped({"dept": f"{ENTERPRISE}:department"}) == {"dept": "Retail"}


def test_value_filter_gives_the_matching_element_sub_attribute():
    """``emails[type eq "work"].value`` picks the work address, not the first one."""
    assert mapped({"email": 'emails[type eq "work"].value'}) == {"email": "adele.vance@contoso.com"}


def test_value_filter_compares_type_case_insensitively():
    """``type`` is not caseExact (RFC 7643 §8.7.1), so "Mobile" matches "mobile"."""
    assert mapped({"mobile": 'phoneNumbers[type eq "Mobile"].value'}) == {
        "mobile": "+1 425 555 0110"
    }


def test_value_filter_prefers_the_primary_match():
    """Of several matches the primary one wins (RFC 7643 §2.4)."""
    resource = user(
        emails=[
            {"type": "work", "value": "old@contoso.com"},
            {"type": "work", "value": "adele.vance@contoso.com", "primary": True},
        ]
    )
    out = mapped({"email": 'emails[type eq "work"].value'}, resource)
    assert out == {"email": "adele.vance@contoso.com"}


def test_value_filter_falls_back_to_first_match_in_order():
    """Without a primary match, the first match in document order wins."""
    resource = user(
        emails=[
            {"type": "work", "value": "first@contoso.com"},
            {"type": "work", "value": "second@contoso.com"},
        ]
    )
    out = mapped({"email": 'emails[type eq "work"].value'}, resource)
    assert out == {"email": "first@contoso.com"}


def test_value_filter_skips_matches_without_the_sub_attribute():
    """An element lacking the wanted sub-attribute does not hide a later one."""
    resource = user(
        emails=[{"type": "work", "primary": True}, {"type": "work", "value": "a@contoso.com"}]
    )
    assert mapped({"email": 'emails[type eq "work"].value'}, resource) == {"email": "a@contoso.com"}


def test_value_filter_without_sub_attribute_gives_the_element():
    """``emails[type eq "work"]`` sends the whole matching element."""
    out = mapped({"workEmail": 'emails[type eq "work"]'})
    assert out == {
        "workEmail": {"primary": True, "type": "work", "value": "adele.vance@contoso.com"}
    }


def test_value_filter_matching_nothing_omits_the_attribute():
    """No fax number, no ``fax`` key."""
    assert mapped({"fax": 'phoneNumbers[type eq "fax"].value'}) == {}


def test_multi_valued_attribute_gives_the_list():
    """Without a filter, a multi-valued attribute is sent whole."""
    assert mapped({"emails": "emails"}) == {"emails": user()["emails"]}


def test_sub_attribute_of_multi_valued_attribute_gives_all_values():
    """``emails.value`` collects the sub-attribute across elements."""
    assert mapped({"addresses": "emails.value"}) == {
        "addresses": ["adele@example.org", "adele.vance@contoso.com"]
    }


def test_source_paths_match_attribute_names_in_any_case():
    """RFC 7643 §2.1: paths and stored names compare case-insensitively."""
    resource = user(UserName="adele.vance@contoso.com")
    del resource["userName"]
    spec = {
        "login": "USERNAME",
        "email": 'EMAILS[TYPE eq "work"].VALUE',
        "dept": f"{ENTERPRISE.upper()}:Department",
    }
    assert mapped(spec, resource) == {
        "login": "adele.vance@contoso.com",
        "email": "adele.vance@contoso.com",
        "dept": "Retail",
    }


def test_common_attributes_are_ordinary_sources():
    """``id``, ``externalId`` and ``active`` map like any other attribute."""
    resource = user()
    out = mapped({"uid": "id", "immutableId": "externalId", "enabled": "active"}, resource)
    assert out == {"uid": resource["id"], "immutableId": resource["externalId"], "enabled": True}


def test_false_is_a_value_not_a_missing_one():
    """A disabled user must reach the target as disabled."""
    assert mapped({"enabled": "active"}, user(active=False)) == {"enabled": False}


def test_missing_attribute_is_omitted():
    """Users without a nickName get no ``nick`` key rather than a null."""
    assert mapped({"nick": "nickName", "login": "userName"}) == {"login": "adele.vance@contoso.com"}


@pytest.mark.parametrize("value", [None, "", [], {}])
def test_unassigned_value_is_omitted(value):
    """Null and empty values are unassigned (RFC 7643 §2.5); Entra sends ``roles: []``."""
    assert mapped({"title": "title"}, user(title=value)) == {}


def test_group_members_map_to_their_ids():
    """Group sources are checked against the Group schema."""
    group = entra_group(displayName="Retail", members=[{"value": "u1"}, {"value": "u2"}])
    out = mapped({"name": "displayName", "memberIds": "members.value"}, group, GROUPS)
    assert out == {"name": "Retail", "memberIds": ["u1", "u2"]}


# --- Transforms --------------------------------------------------------------------------


def test_const_writes_a_fixed_value():
    """Any JSON value, objects included."""
    out = mapped({"source": {"const": "entra"}, "flags": {"const": {"sso": True}}})
    assert out == {"source": "entra", "flags": {"sso": True}}


def test_lower_lower_cases_strings():
    """Useful for apps that compare logins case-sensitively."""
    assert mapped({"login": {"lower": "displayName"}}) == {"login": "adele vance"}


def test_upper_upper_cases_strings():
    """The mirror of ``lower``."""
    assert mapped({"dept": {"upper": f"{ENTERPRISE}:department"}}) == {"dept": "RETAIL"}


def test_case_change_applies_to_each_string_of_a_list():
    """``emails.value`` lower-cased element by element."""
    resource = user(emails=[{"type": "work", "value": "Adele.Vance@Contoso.com"}])
    assert mapped({"emails": {"lower": "emails.value"}}, resource) == {
        "emails": ["adele.vance@contoso.com"]
    }


def test_case_change_leaves_other_values_alone():
    """Booleans have no case."""
    assert mapped({"enabled": {"upper": "active"}}) == {"enabled": True}


def test_join_puts_sep_between_parts():
    """``{"join": [...], "sep": ...}`` builds one string."""
    spec = {"sortName": {"join": ["name.familyName", "name.givenName"], "sep": ", "}}
    assert mapped(spec) == {"sortName": "Vance, Adele"}


def test_join_separates_with_a_space_by_default():
    """Without ``sep``, parts are joined with a space."""
    assert mapped({"full": {"join": ["name.givenName", "name.familyName"]}}) == {
        "full": "Adele Vance"
    }


def test_join_skips_missing_parts():
    """No double separators for a user without a middle name."""
    spec = {"full": {"join": ["name.givenName", "name.middleName", "name.familyName"]}}
    assert mapped(spec) == {"full": "Adele Vance"}


def test_join_of_only_missing_parts_is_missing():
    """An empty join is omitted, not sent as ``""``."""
    assert mapped({"full": {"join": ["nickName", "name.middleName"]}}) == {}


def test_join_flattens_lists_and_formats_scalars():
    """Lists contribute each element; booleans are written as JSON spells them."""
    spec = {"summary": {"join": ["emails.value", "active", {"const": 3}], "sep": ";"}}
    assert mapped(spec) == {"summary": "adele@example.org;adele.vance@contoso.com;true;3"}


def test_coalesce_takes_the_first_present_part():
    """Fall back from a mobile number to any number."""
    spec = {"phone": {"coalesce": ['phoneNumbers[type eq "fax"].value', "phoneNumbers.value"]}}
    assert mapped(spec) == {"phone": ["+1 425 555 0109", "+1 425 555 0110"]}


def test_coalesce_of_only_missing_parts_is_missing():
    """Nothing present, nothing written."""
    assert mapped({"nick": {"coalesce": ["nickName", "name.middleName"]}}) == {}


def test_default_fills_in_a_missing_value():
    """``{"default": v, "from": expr}`` gives ``v`` when ``expr`` is missing."""
    assert mapped({"tier": {"default": "standard", "from": "userType"}}) == {"tier": "standard"}


def test_default_keeps_a_present_value():
    """The default only fills gaps."""
    spec = {"tier": {"default": "standard", "from": "userType"}}
    assert mapped(spec, user(userType="Member")) == {"tier": "Member"}


def test_expressions_nest():
    """Forms take expressions, so they compose."""
    spec = {
        "handle": {
            "lower": {
                "default": "unknown",
                "from": {"coalesce": ["nickName", {"join": ["name.givenName", "title"]}]},
            }
        }
    }
    assert mapped(spec) == {"handle": "adele retail manager"}


def test_output_shares_nothing_with_input():
    """Values are copied: editing the output leaves the resource and the mapping intact."""
    resource = user()
    before = copy.deepcopy(resource)
    mapping = parse_mapping({"emails": "emails", "flags": {"const": {"sso": True}}}, USERS)
    out = apply_mapping(mapping, resource, USERS)
    out["emails"][0]["value"] = "changed@example.org"
    out["flags"]["sso"] = False
    assert resource == before
    assert apply_mapping(mapping, resource, USERS)["flags"] == {"sso": True}


def test_const_is_copied_from_the_spec():
    """Editing the spec after parsing does not change the mapping."""
    spec = {"flags": {"const": {"sso": True}}}
    mapping = parse_mapping(spec, USERS)
    spec["flags"]["const"]["sso"] = False
    assert apply_mapping(mapping, user(), USERS) == {"flags": {"sso": True}}


def test_apply_refuses_a_mapping_parsed_for_another_resource_type():
    """A User mapping applied to a Group is a programming error, not an empty payload."""
    mapping = parse_mapping({"name": "displayName"}, USERS)
    with pytest.raises(ValueError, match="Group"):
        apply_mapping(mapping, entra_group(), GROUPS)
