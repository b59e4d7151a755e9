"""SCIM filters (RFC 7644 §3.4.2.2): parsing, evaluation and index hints."""

from __future__ import annotations

import pytest

from bridge.scim.attributes import Schema
from bridge.scim.core_schemas import CORE_GROUP, CORE_USER
from bridge.scim.errors import InvalidFilter
from bridge.scim.filter import (
    And,
    AttrPath,
    Comparison,
    Not,
    Or,
    Present,
    ValuePath,
    indexed_equalities,
    parse_attr_path,
    parse_filter,
)
from bridge.scim.filter_eval import matches, matches_element
from bridge.scim.resource_types import build_resource_types

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
TYPES = build_resource_types()
USER = TYPES["User"]
GROUP = TYPES["Group"]


def path(attr: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(urn, attr, sub)


def bjensen(**overrides: object) -> dict:
    """Abridged from RFC 7643 §8.2 (full User representation)."""
    user = {
        "schemas": [USER_URN, ENTERPRISE],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": True,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": 'W/"a330bc54f0671c9"',
        },
        ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"},
    }
    user.update(overrides)
    return user


def user_matches(text: str, resource: dict | None = None) -> bool:
    return matches(parse_filter(text), bjensen() if resource is None else resource, USER)


# --- Parsing: the examples of RFC 7644 §3.4.2.2 --------------------------------------------

EMPLOYEE_EMAILS = (
    'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")'
)
NOT_EMPLOYEE_EMAILS = (
    'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")'
)
WORK_EMAIL_OR_XMPP = (
    'emails[type eq "work" and value co "@example.com"] or '
    'ims[type eq "xmpp" and value co "@foo.com"]'
)


RFC_EXAMPLES = {
    'userName eq "bjensen"': Comparison(path("userName"), "eq", "bjensen"),
    'name.familyName co "O\'Malley"': Comparison(path("name", "familyName"), "co", "O'Malley"),
    'userName sw "J"': Comparison(path("userName"), "sw", "J"),
    f'{USER_URN}:userName sw "J"': Comparison(path("userName", urn=USER_URN), "sw", "J"),
    "title pr": Present(path("title")),
    'meta.lastModified gt "2011-05-13T04:42:34Z"': Comparison(
        path("meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"
    ),
    'meta.lastModified ge "2011-05-13T04:42:34Z"': Comparison(
        path("meta", "lastModified"), "ge", "2011-05-13T04:42:34Z"
    ),
    'meta.lastModified lt "2011-05-13T04:42:34Z"': Comparison(
        path("meta", "lastModified"), "lt", "2011-05-13T04:42:34Z"
    ),
    'meta.lastModified le "2011-05-13T04:42:34Z"': Comparison(
        path("meta", "lastModified"), "le", "2011-05-13T04:42:34Z"
    ),
    'title pr and userType eq "Employee"': And(
        Present(path("title")), Comparison(path("userType"), "eq", "Employee")
    ),
    'title pr or userType eq "Intern"': Or(
        Present(path("title")), Comparison(path("userType"), "eq", "Intern")
    ),
    f'schemas eq "{ENTERPRISE}"': Comparison(path("schemas"), "eq", ENTERPRISE),
    EMPLOYEE_EMAILS: And(
        Comparison(path("userType"), "eq", "Employee"),
        Or(
            Comparison(path("emails"), "co", "example.com"),
            Comparison(path("emails", "value"), "co", "example.org"),
        ),
    ),
    NOT_EMPLOYEE_EMAILS: (
        And(
            Comparison(path("userType"), "ne", "Employee"),
            Not(
                Or(
                    Comparison(path("emails"), "co", "example.com"),
                    Comparison(path("emails", "value"), "co", "example.org"),
                )
            ),
        )
    ),
    'userType eq "Employee" and (emails.type eq "work")': And(
        Comparison(path("userType"), "eq", "Employee"),
        Comparison(path("emails", "type"), "eq", "work"),
    ),
    'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]': And(
        Comparison(path("userType"), "eq", "Employee"),
        ValuePath(
            path("emails"),
            And(
                Comparison(path("type"), "eq", "work"),
                Comparison(path("value"), "co", "@example.com"),
            ),
        ),
    ),
    WORK_EMAIL_OR_XMPP: Or(
        ValuePath(
            path("emails"),
            And(
                Comparison(path("type"), "eq", "work"),
                Comparison(path("value"), "co", "@example.com"),
            ),
        ),
        ValuePath(
            path("ims"),
            And(
                Comparison(path("type"), "eq", "xmpp"),
                Comparison(path("value"), "co", "@foo.com"),
            ),
        ),
    ),
}


@pytest.mark.parametrize("text", RFC_EXAMPLES)
def test_parses_rfc_example(text):
    """Every example filter of RFC 7644 §3.4.2.2."""
    assert parse_filter(text) == RFC_EXAMPLES[text]


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"',
        'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"',
        'displayName eq "Group1DisplayName"',
    ],
)
def test_parses_entra_filter(text):
    node = parse_filter(text)
    assert isinstance(node, Comparison)
    assert node.op == "eq"


def test_operators_and_keywords_are_case_insensitive():
    """RFC 7644 §3.4.2.2: attribute names and operators are case-insensitive."""
    assert parse_filter('title PR AND userType Eq "x" Or NOT (title pr)') == Or(
        And(Present(path("title")), Comparison(path("userType"), "eq", "x")),
        Not(Present(path("title"))),
    )


def test_and_binds_tighter_than_or():
    a, b, c = (Present(path(n)) for n in "abc")
    assert parse_filter("a pr or b pr and c pr") == Or(a, And(b, c))
    assert parse_filter("a pr and b pr or c pr") == Or(And(a, b), c)


def test_parentheses_override_precedence():
    a, b, c = (Present(path(n)) for n in "abc")
    assert parse_filter("(a pr or b pr) and c pr") == And(Or(a, b), c)


def test_not_binds_tighter_than_and():
    a, b = Present(path("a")), Present(path("b"))
    assert parse_filter("not (a pr) and b pr") == And(Not(a), b)


def test_and_is_left_associative():
    a, b, c = (Present(path(n)) for n in "abc")
    assert parse_filter("a pr and b pr and c pr") == And(And(a, b), c)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("true", True),
        ("False", False),
        ("null", None),
        ("42", 42),
        ("-7", -7),
        ("1.5", 1.5),
        ("2e3", 2000.0),
        (r'"a\"b"', 'a"b'),
        (r'"tab\tand \u00e9"', "tab\tand \u00e9"),
        ('""', ""),
    ],
)
def test_parses_comparison_values(literal, value):
    """compValue = false / null / true / number / string (JSON, RFC 7159)."""
    node = parse_filter(f"x eq {literal}")
    assert node.value == value
    assert type(node.value) is type(value)


def test_string_value_may_contain_brackets_and_keywords():
    node = parse_filter('displayName eq "a (b) [c] and or not"')
    assert node.value == "a (b) [c] and or not"


def test_parses_ref_sub_attribute():
    assert parse_filter("members.$ref pr") == Present(path("members", "$ref"))


def test_parses_urn_qualified_sub_attribute():
    node = parse_filter(f'{USER_URN}:name.familyName eq "x"')
    assert node.path == path("name", "familyName", urn=USER_URN)


def test_parses_extension_sub_attribute():
    node = parse_filter(f'{ENTERPRISE}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"')
    assert node.path == path("manager", "value", urn=ENTERPRISE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userName", path("userName")),
        ("name.givenName", path("name", "givenName")),
        ("members.$ref", path("members", "$ref")),
        (f"{ENTERPRISE}:employeeNumber", path("employeeNumber", urn=ENTERPRISE)),
    ],
)
def test_parse_attr_path(text, expected):
    assert parse_attr_path(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["", "1abc", "name.", "a.b.c", "na me", ":userName", "a:b"])
def test_parse_attr_path_rejects_invalid_paths(text):
    with pytest.raises(InvalidFilter):
        parse_attr_path(text)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "empty filter"),
        ("   ", "empty filter"),
        ('userName eq "bjensen', "unterminated string"),
        ('(userName eq "bjensen"', "expected ')'"),
        ('userName eq "bjensen")', "unexpected ')'"),
        ('userName eq "bjensen" title pr', "unexpected 'title'"),
        ('userName is "bjensen"', "unknown operator 'is'"),
        ("userName eq", "expected a value after 'eq'"),
        ("userName", "expected an operator"),
        ("userName eq bjensen", "invalid value 'bjensen'"),
        ('userName eq "a" and', "expected an attribute"),
        ('userName eq "a" or or title pr', "expected an attribute"),
        ('emails[type eq "work"', "expected ']'"),
        ('emails[type eq "work"].va+lue eq "x"', "invalid sub-attribute"),
        ('emails[type eq "work" and phones[type pr]]', "nested value filter"),
        ('1userName eq "x"', "invalid attribute path"),
        ('userName eq "\\x"', "invalid string"),
        ("userName gt null", "null can only be compared"),
        ("not title pr", "unknown operator 'title'"),
        ("()", "expected an attribute"),
        ("userName eq 01", "invalid value '01'"),
    ],
)
def test_syntax_error_raises_invalid_filter(text, detail):
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text)
    assert detail in info.value.detail
    assert info.value.to_scim()["scimType"] == "invalidFilter"


# --- Evaluation: the RFC examples against bjensen ------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen@example.com"', True),
        ('userName eq "bjensen"', False),
        ("name.familyName co \"O'Malley\"", True),
        ('userName sw "J"', False),
        ('userName sw "B"', True),
        (f'{USER_URN}:userName sw "b"', True),
        ("title pr", True),
        ("nickName pr", False),
        ('meta.lastModified gt "2011-05-13T04:42:34Z"', False),
        ('meta.lastModified ge "2011-05-13T04:42:34Z"', True),
        ('meta.lastModified lt "2011-05-13T04:42:34Z"', False),
        ('meta.lastModified le "2011-05-13T04:42:34Z"', True),
        ('title pr and userType eq "Employee"', True),
        ('title pr or userType eq "Intern"', True),
        ('nickName pr or userType eq "Intern"', False),
        (f'schemas eq "{ENTERPRISE}"', True),
        (EMPLOYEE_EMAILS, True),
        (NOT_EMPLOYEE_EMAILS, False),
        ('userType eq "Employee" and (emails.type eq "work")', True),
        ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', True),
        (WORK_EMAIL_OR_XMPP, True),
    ],
)  # fmt: skip
def test_rfc_example_matches_bjensen(text, expected):
    """RFC 7644 §3.4.2.2 examples evaluated against the RFC 7643 §8.2 user."""
    assert user_matches(text) is expected


def test_not_matches_user_without_matching_emails():
    """The ``not (...)`` RFC example selects a non-employee with no such emails."""
    other = bjensen(userType="Contractor", emails=[{"value": "c@contoso.com", "type": "work"}])
    text = (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")'
    )
    assert user_matches(text, other) is True


def test_value_path_requires_one_element_to_satisfy_all_conditions():
    """emails[...] matches only when a single element satisfies the whole filter."""
    assert user_matches('emails[type eq "home" and value co "@example.com"]') is False
    assert user_matches('emails[type eq "home" and value co "@jensen.org"]') is True


def test_value_path_with_single_condition():
    assert user_matches('emails[type eq "work"]') is True
    assert user_matches('emails[type eq "other"]') is False


def test_value_path_on_xmpp_ims():
    user = bjensen(ims=[{"value": "babs@foo.com", "type": "xmpp"}])
    assert user_matches('ims[type eq "xmpp" and value co "@foo.com"]', user) is True


@pytest.mark.parametrize(
    ("text", "resource", "expected"),
    [
        (
            'userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"',
            bjensen(userName="Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"),
            True,
        ),
        (
            'userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"',
            bjensen(),
            False,
        ),
        ('externalId eq "701984"', bjensen(), True),
        ('externalId eq "701985"', bjensen(), False),
    ],
)
def test_entra_user_filters(text, resource, expected):
    assert user_matches(text, resource) is expected


def test_entra_group_display_name_filter():
    group = {"schemas": [CORE_GROUP.id], "id": "g1", "displayName": "Group1DisplayName"}
    assert matches(parse_filter('displayName eq "Group1DisplayName"'), group, GROUP) is True
    assert matches(parse_filter('displayName eq "Group2DisplayName"'), group, GROUP) is False


def test_group_member_value_filter():
    group = {"displayName": "G", "members": [{"value": "u1"}, {"value": "u2"}]}
    assert matches(parse_filter('members[value eq "u2"]'), group, GROUP) is True
    assert matches(parse_filter('members.value eq "u3"'), group, GROUP) is False


# --- Case sensitivity ----------------------------------------------------------------------


def test_case_insensitive_attribute_ignores_value_case():
    """userName has caseExact false (RFC 7643 §8.7.1)."""
    assert user_matches('userName eq "BJENSEN@EXAMPLE.COM"') is True


def test_case_exact_attribute_respects_value_case():
    """externalId has caseExact true (RFC 7643 §3.1)."""
    resource = bjensen(externalId="AbC")
    assert user_matches('externalId eq "AbC"', resource) is True
    assert user_matches('externalId eq "abc"', resource) is False


def test_id_is_case_exact():
    assert user_matches('id eq "2819C223-7F76-453A-919D-413861904646"') is False
    assert user_matches('id eq "2819c223-7f76-453a-919d-413861904646"') is True


def test_filter_attribute_names_ignore_case():
    assert user_matches('USERNAME eq "bjensen@example.com"') is True
    assert user_matches('NAME.FAMILYNAME eq "o\'malley"') is True


def test_resource_keys_are_matched_case_insensitively():
    """Stored keys may be in any case, as Entra sometimes sends them."""
    resource = {"UserName": "kim", "Name": {"GivenName": "Kim"}}
    assert user_matches('userName eq "kim"', resource) is True
    assert user_matches('name.givenName eq "kim"', resource) is True


def test_case_insensitive_ordering():
    assert user_matches('userName gt "A"') is True
    assert user_matches('userName lt "C"') is True


# --- Extensions, common attributes and multi-valued attributes -----------------------------


def test_extension_attribute_is_read_under_its_urn():
    assert user_matches(f'{ENTERPRISE}:department eq "tour operations"') is True
    assert user_matches(f'{ENTERPRISE}:employeeNumber eq "1"') is False


def test_extension_urn_matches_case_insensitively():
    assert user_matches(f'{ENTERPRISE.upper()}:employeeNumber eq "701984"') is True


def test_extension_sub_attribute():
    user = bjensen(**{ENTERPRISE: {"manager": {"value": "m-1", "displayName": "Boss"}}})
    assert user_matches(f'{ENTERPRISE}:manager.value eq "m-1"', user) is True
    assert user_matches(f"{ENTERPRISE}:manager pr", user) is True
    assert user_matches(f"{ENTERPRISE}:manager pr") is False


def test_extension_attribute_missing_extension_is_not_present():
    assert user_matches(f"{ENTERPRISE}:department pr", bjensen(**{ENTERPRISE: None})) is False


def test_schemas_filter_on_group_without_extension():
    group = {"schemas": [CORE_GROUP.id], "displayName": "G"}
    assert matches(parse_filter(f'schemas eq "{CORE_GROUP.id}"'), group, GROUP) is True
    assert matches(parse_filter(f'schemas eq "{ENTERPRISE}"'), group, GROUP) is False


def test_multi_valued_complex_compares_value_sub_attribute():
    """``emails eq "x"`` compares each element's ``value``."""
    assert user_matches('emails eq "babs@jensen.org"') is True
    assert user_matches('emails eq "home"') is False


def test_multi_valued_sub_attribute_matches_any_element():
    assert user_matches('emails.type eq "home"') is True


def test_primary_boolean_in_value_path():
    assert user_matches('emails[primary eq true and type eq "work"]') is True
    assert user_matches('emails[primary eq true and type eq "home"]') is False


def test_matches_element_uses_sub_attribute_names():
    emails = CORE_USER.attribute("emails")
    element = {"value": "a@example.com", "type": "work"}
    assert matches_element(parse_filter('type eq "work"'), element, emails) is True
    assert matches_element(parse_filter('emails.type eq "home"'), element, emails) is False
    assert matches_element(parse_filter('not (value ew ".org")'), element, emails) is True


def test_matches_element_rejects_unknown_sub_attribute():
    emails = CORE_USER.attribute("emails")
    with pytest.raises(InvalidFilter, match="unknown sub-attribute"):
        matches_element(parse_filter('kind eq "work"'), {}, emails)
    with pytest.raises(InvalidFilter, match="unknown sub-attribute"):
        matches_element(parse_filter('phoneNumbers.type eq "work"'), {}, emails)


# --- Presence, null, ne --------------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_present_is_false_for_empty_values(empty):
    """RFC 7644 §3.4.2.2 ``pr``: a non-empty, non-null value."""
    assert user_matches("title pr", bjensen(title=empty)) is False


def test_present_is_false_for_missing_attribute():
    assert user_matches("nickName pr") is False


def test_eq_null_means_not_present():
    assert user_matches("nickName eq null") is True
    assert user_matches("title eq null") is False
    assert user_matches("title ne null") is True


def test_ne_matches_missing_attribute():
    assert user_matches('nickName ne "Babs"') is True


def test_ne_on_multi_valued_means_no_value_equals():
    assert user_matches('emails.type ne "home"') is False
    assert user_matches('emails.type ne "other"') is True


# --- Types ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", [True, "True", "true", "TRUE"])
def test_boolean_matches_json_and_string_true(stored):
    """Entra sends booleans as the strings "True" and "False"."""
    assert user_matches("active eq true", bjensen(active=stored)) is True
    assert user_matches("active eq false", bjensen(active=stored)) is False


def test_boolean_filter_value_may_be_a_string():
    assert user_matches('active eq "True"') is True
    assert user_matches('active ne "false"') is True


@pytest.mark.parametrize("text", ["active gt true", 'active co "t"', "active eq 1"])
def test_invalid_boolean_comparison_raises(text):
    with pytest.raises(InvalidFilter):
        user_matches(text)


def test_datetime_compares_instants_across_offsets():
    """dateTime values (RFC 7643 §2.3.5) compare as instants, not as text."""
    assert user_matches('meta.lastModified eq "2011-05-13T06:42:34+02:00"') is True
    assert user_matches('meta.created lt "2010-01-23T04:56:22.5Z"') is True


def test_datetime_filter_value_must_be_a_datetime():
    with pytest.raises(InvalidFilter, match="dateTime"):
        user_matches('meta.lastModified gt "yesterday"')


def test_unparseable_stored_datetime_does_not_match():
    user = bjensen(meta={"lastModified": "garbage"})
    assert user_matches('meta.lastModified gt "2000-01-01T00:00:00Z"', user) is False


def test_numbers_compare_numerically():
    schema = {
        "id": "urn:example:schemas:extension:hr:2.0:User",
        "attributes": [{"name": "level", "type": "integer"}],
    }
    hr = Schema.from_scim(schema)
    rtype = build_resource_types([hr])["User"]
    user = {hr.id: {"level": 10}}
    assert matches(parse_filter(f"{hr.id}:level gt 9"), user, rtype) is True
    assert matches(parse_filter(f"{hr.id}:level le 9.5"), user, rtype) is False
    with pytest.raises(InvalidFilter):
        matches(parse_filter(f'{hr.id}:level co "1"'), user, rtype)


def test_string_attribute_rejects_non_string_value():
    with pytest.raises(InvalidFilter, match="quoted string"):
        user_matches("userName eq 5")


def test_ordering_on_complex_attribute_raises():
    with pytest.raises(InvalidFilter, match="complex"):
        user_matches('name gt "a"')


def test_value_path_on_simple_attribute_raises():
    with pytest.raises(InvalidFilter, match="not a complex attribute"):
        user_matches('userName[value eq "x"]')


@pytest.mark.parametrize(
    "text",
    [
        'shoeSize eq "42"',
        'name.nickName eq "x"',
        'members.value eq "x"',
        f'{ENTERPRISE}:userName eq "x"',
        'urn:example:unknown:userName eq "x"',
    ],
)
def test_unknown_attribute_raises_invalid_filter(text):
    with pytest.raises(InvalidFilter, match="unknown attribute"):
        user_matches(text)


def test_user_attribute_is_unknown_on_groups():
    with pytest.raises(InvalidFilter, match="unknown attribute"):
        matches(parse_filter('userName eq "x"'), {}, GROUP)


# --- Index hints ---------------------------------------------------------------------------


def test_indexed_equalities_for_single_eq():
    assert indexed_equalities(parse_filter('userName eq "a"')) == [(path("userName"), "a")]


def test_indexed_equalities_collects_both_sides_of_and():
    node = parse_filter('userName eq "a" and (externalId eq "b" and title pr)')
    assert indexed_equalities(node) == [(path("userName"), "a"), (path("externalId"), "b")]


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "a" or externalId eq "b"',
        'not (userName eq "a")',
        'userName ne "a"',
        "title pr",
        "nickName eq null",
    ],
)
def test_indexed_equalities_empty_when_nothing_is_required(text):
    assert indexed_equalities(parse_filter(text)) == []


def test_indexed_equalities_keeps_required_side_of_mixed_and():
    node = parse_filter('displayName eq "G" and (title pr or userType eq "x")')
    assert indexed_equalities(node) == [(path("displayName"), "G")]


def test_value_path_with_sub_attribute_as_entra_matches_on_work_email():
    """Entra's matching attribute ``emails[type eq "work"].value`` becomes this filter."""
    node = parse_filter('emails[type eq "work"].value eq "a@contoso.com"')
    user = {
        "emails": [
            {"type": "home", "value": "a@contoso.com"},
            {"type": "work", "value": "A@contoso.com"},
        ]
    }
    other = {"emails": [{"type": "home", "value": "a@contoso.com"}]}
    assert matches(node, user, USER)
    assert not matches(node, other, USER)


def test_indexed_equalities_reach_into_value_paths():
    node = parse_filter('emails[type eq "work" and value eq "a@x.com"]')
    assert indexed_equalities(node) == [
        (AttrPath(None, "emails", "type"), "work"),
        (AttrPath(None, "emails", "value"), "a@x.com"),
    ]
