"""Per-target attribute mapping: the identity, spec parsing and its errors, round trips."""

from __future__ import annotations

import copy

import pytest

from bridge.targets.mapping import (
    MAX_DEPTH,
    Mapping,
    MappingError,
    apply_mapping,
    parse_mapping,
)
from tests.factories import ENTERPRISE
from tests.targets.mapping_samples import GROUPS, USERS, user

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
