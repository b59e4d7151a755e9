"""Per-target attribute mapping: spec parsing, source paths, transforms, copying."""

from __future__ import annotations

import copy

import pytest

from bridge.scim.resource_types import build_resource_types
from bridge.targets.mapping import (
    MAX_DEPTH,
    Mapping,
    MappingError,
    apply_mapping,
    parse_mapping,
)
from tests.factories import ENTERPRISE, entra_group, entra_user

TYPES = build_resource_types()
USERS = TYPES["User"]
GROUPS = TYPES["Group"]
MANAGER_ID = "26118915-6090-4610-87e4-49d8ca9f808d"


def user(**overrides) -> dict:
    """An Entra user as the bridge stores it, with the attributes apps usually want."""
    body = entra_user(
        userName="adele.vance@contoso.com",
        displayName="Adele Vance",
        name={"formatted": "Adele Vance", "familyName": "Vance", "givenName": "Adele"},
        emails=[
            {"type": "home", "value": "adele@example.org"},
            {"primary": True, "type": "work", "value": "adele.vance@contoso.com"},
        ],
        phoneNumbers=[
            {"type": "work", "value": "+1 425 555 0109"},
            {"type": "mobile", "value": "+1 425 555 0110"},
        ],
        title="Retail Manager",
        **{ENTERPRISE: {"department": "Retail", "manager": {"value": MANAGER_ID}}},
    )
    body["id"] = "8f3c2a1e-5b7d-4e9a-9c4f-2d6b1a0e7f35"
    body.update(overrides)
    return body


def mapped(spec: dict, resource: dict | None = None, rtype=USERS) -> dict:
    """Parse ``spec`` and apply it to ``resource`` (the sample user by default)."""
    return apply_mapping(
        parse_mapping(spec, rtype), user() if resource is None else resource, rtype
    )


# --- Identity ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [None, {}])
def test_absent_or_empty_spec_is_identity(spec):
    """No mapping configured means "send the SCIM resource as is"."""
    mapping = parse_mapping(spec, USERS)
    assert mapping.identity and mapping.rules == ()


def test_identity_sends_resource_without_meta():
    """Everything but ``meta``, which describes our copy, not the target's."""
    resource = user()
    expected = {k: v for k, v in resource.items() if k != "meta"}
    assert apply_mapping(parse_mapping(None, USERS), resource, USERS) == expected


def test_identity_drops_meta_in_any_case():
    """Attribute names are case-insensitive (RFC 7643 §2.1)."""
    resource = user()
    resource["Meta"] = resource.pop("meta")
    assert "Meta" not in apply_mapping(parse_mapping(None, USERS), resource, USERS)


def test_identity_output_shares_nothing_with_input():
    """Editing what a connector sends cannot corrupt the stored resource."""
    resource = user()
    before = copy.deepcopy(resource)
    out = apply_mapping(parse_mapping(None, USERS), resource, USERS)
    out["emails"][0]["value"] = "changed@example.org"
    out[ENTERPRISE]["department"] = "changed"
    assert resource == before


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


# --- Round trip --------------------------------------------------------------------------


def test_to_spec_round_trips_through_parse_mapping():
    """What ``to_spec`` returns (for storage) parses back to an equal mapping."""
    spec = {
        "email": 'emails[type eq "work"].value',
        f"{ENTERPRISE}:manager.value": f"{ENTERPRISE}:manager.value",
        "full": {"join": ["name.givenName", "name.familyName"], "sep": " "},
        "login": {"lower": {"coalesce": ["userName", {"const": "nobody"}]}},
        "tier": {"default": "standard", "from": {"upper": "userType"}},
    }
    mapping = parse_mapping(spec, USERS)
    assert mapping.to_spec() == spec
    assert parse_mapping(mapping.to_spec(), USERS) == mapping


def test_to_spec_spells_out_the_default_separator():
    """Stored specs do not depend on today's default."""
    mapping = parse_mapping({"full": {"join": ["name.givenName"]}}, USERS)
    assert mapping.to_spec() == {"full": {"join": ["name.givenName"], "sep": " "}}


def test_identity_to_spec_is_none():
    """The identity stores as "no mapping"."""
    assert parse_mapping({}, USERS).to_spec() is None


def test_mapping_is_identity_or_has_rules():
    """An empty non-identity mapping would silently send nothing."""
    with pytest.raises(ValueError):
        Mapping(rules=(), identity=False)


# --- Errors ------------------------------------------------------------------------------


def test_spec_must_be_an_object():
    """A list is not a mapping."""
    with pytest.raises(MappingError, match="JSON object"):
        parse_mapping(["userName"], USERS)  # type: ignore[arg-type]


def test_unknown_source_path_is_rejected_naming_the_key():
    """Typos are caught when the target is configured, not at delivery."""
    with pytest.raises(MappingError, match=r"mapping\['login'\].*'usrName'"):
        parse_mapping({"login": "usrName"}, USERS)


def test_unknown_sub_attribute_is_rejected():
    """``name.first`` is not a User attribute."""
    with pytest.raises(MappingError, match=r"mapping\['first'\]"):
        parse_mapping({"first": "name.first"}, USERS)


def test_malformed_value_filter_is_rejected():
    """Filter syntax errors are reported with the key."""
    with pytest.raises(MappingError, match=r"mapping\['email'\]"):
        parse_mapping({"email": 'emails[type eq "work".value'}, USERS)


def test_value_filter_on_unknown_sub_attribute_is_rejected():
    """Filters inside brackets name sub-attributes of the filtered attribute."""
    with pytest.raises(MappingError, match="sub-attributes of emails"):
        parse_mapping({"email": 'emails[kind eq "work"].value'}, USERS)


def test_value_filter_comparison_that_cannot_apply_is_rejected():
    """``primary`` is boolean, so ``gt`` fails at parse time, even behind ``and``."""
    with pytest.raises(MappingError, match="primary"):
        parse_mapping({"email": 'emails[type eq "x" and primary gt true].value'}, USERS)


def test_value_filter_on_single_valued_attribute_is_rejected():
    """Only multi-valued complex attributes take a value filter (RFC 7644 §3.5.2)."""
    with pytest.raises(MappingError, match="multi-valued"):
        parse_mapping({"first": 'name[givenName eq "x"]'}, USERS)


def test_extension_paths_are_checked_against_the_resource_type():
    """Groups have no enterprise extension."""
    with pytest.raises(MappingError, match=r"mapping\['dept'\]"):
        parse_mapping({"dept": f"{ENTERPRISE}:department"}, GROUPS)


@pytest.mark.parametrize("expr", [42, True, None, ["userName"]])
def test_expression_of_another_type_is_rejected(expr):
    """An expression is a path string or a form object."""
    with pytest.raises(MappingError, match="expected a source path"):
        parse_mapping({"login": expr}, USERS)


def test_unknown_form_is_rejected():
    """The known forms are listed in the message."""
    with pytest.raises(MappingError, match=r"unknown expression \['concat'\].*coalesce"):
        parse_mapping({"full": {"concat": ["name.givenName"]}}, USERS)


def test_two_forms_in_one_object_are_rejected():
    """``{"lower": ..., "upper": ...}`` is ambiguous."""
    with pytest.raises(MappingError, match="cannot be combined"):
        parse_mapping({"login": {"lower": "userName", "upper": "userName"}}, USERS)


def test_unknown_key_beside_a_form_is_rejected():
    """``sep`` belongs to ``join`` only."""
    with pytest.raises(MappingError, match=r"unknown key\(s\) \['sep'\]"):
        parse_mapping({"login": {"lower": "userName", "sep": "-"}}, USERS)


def test_default_without_from_is_rejected():
    """``default`` needs the expression it defaults."""
    with pytest.raises(MappingError, match="'from'"):
        parse_mapping({"tier": {"default": "standard"}}, USERS)


@pytest.mark.parametrize("parts", [[], "name.givenName", {"a": "b"}])
def test_join_needs_a_non_empty_list(parts):
    """``join`` and ``coalesce`` take a list of expressions."""
    with pytest.raises(MappingError, match="non-empty list"):
        parse_mapping({"full": {"join": parts}}, USERS)


def test_join_separator_must_be_a_string():
    """``sep`` is text."""
    with pytest.raises(MappingError, match="'sep' must be a string"):
        parse_mapping({"full": {"join": ["name.givenName"], "sep": 1}}, USERS)


@pytest.mark.parametrize("value", [None, "", [], {}])
def test_unassigned_const_is_rejected(value):
    """An unassigned constant would never be sent (RFC 7643 §2.5)."""
    with pytest.raises(MappingError, match="unassigned"):
        parse_mapping({"x": {"const": value}}, USERS)


def test_const_must_be_json():
    """Only values a JSON body can carry."""
    with pytest.raises(MappingError, match="not a JSON value"):
        parse_mapping({"x": {"const": {1, 2}}}, USERS)


def test_nested_error_names_its_location():
    """The message leads to the broken part of a nested expression."""
    spec = {"full": {"join": ["name.givenName", {"lower": "nme.familyName"}]}}
    with pytest.raises(MappingError, match=r"mapping\['full'\]\.join\[1\]\.lower: "):
        parse_mapping(spec, USERS)


@pytest.mark.parametrize(
    "target", ["", "name..first", "first name", 'emails[type eq "work"].value', "urn:x", "a:b"]
)
def test_malformed_target_is_rejected(target):
    """Targets are dotted names, optionally after a URN; no filters, blanks or spaces."""
    with pytest.raises(MappingError, match="a target is a dotted attribute name"):
        parse_mapping({target: "userName"}, USERS)


def test_target_inside_another_target_is_rejected():
    """``name`` and ``name.first`` would overwrite each other."""
    with pytest.raises(MappingError, match=r"mapping\['name.first'\]: lies inside target 'name'"):
        parse_mapping({"name": "name", "name.first": "name.givenName"}, USERS)


def test_nesting_deeper_than_the_limit_is_rejected():
    """A bounded depth keeps hostile specs from exhausting the stack."""
    expr: object = "userName"
    for _ in range(MAX_DEPTH - 1):
        expr = {"lower": expr}
    parse_mapping({"login": expr}, USERS)
    expr = {"lower": expr}
    with pytest.raises(MappingError, match="nest deeper"):
        parse_mapping({"login": expr}, USERS)
