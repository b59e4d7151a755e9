"""Request bodies as stored documents (RFC 7643 §2): names in canonical case, values
checked against their attribute's type and multiplicity."""

from __future__ import annotations

import pytest

from bridge.scim import errors
from bridge.scim.resource_types import build_resource_types
from bridge.scim.resources import normalise

USER = build_resource_types()["User"]
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_sub_attribute_names_are_stored_in_canonical_case():
    """RFC 7643 §2.1: attribute names are case-insensitive."""
    doc, _ = normalise(
        {
            "schemas": [CORE, ENTERPRISE],
            "UserName": "a@example.com",
            "NAME": {"GivenName": "Ann", "familyname": "Lee"},
            "Emails": [{"VALUE": "a@example.com", "Primary": True}],
            ENTERPRISE.upper(): {"Department": "Sales", "MANAGER": {"Value": "m1"}},
        },
        USER,
    )
    assert doc["userName"] == "a@example.com"
    assert doc["name"] == {"givenName": "Ann", "familyName": "Lee"}
    assert doc["emails"] == [{"value": "a@example.com", "primary": True}]
    assert doc[ENTERPRISE] == {"department": "Sales", "manager": {"value": "m1"}}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"userName": 7}, "userName"),
        ({"userName": "a", "name": {"givenName": ["Ann"]}}, "name.givenName"),
        ({"userName": "a", "emails": "a@example.com"}, "emails"),
        ({"userName": "a", "title": {"text": "x"}}, "title"),
        ({"userName": "a", ENTERPRISE: {"department": 3}}, f"{ENTERPRISE}.department"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_its_path(body, where):
    """RFC 7644 §3.12: invalidValue, for a value that does not fit the attribute."""
    with pytest.raises(errors.InvalidValue, match=where.replace(".", r"\.")):
        normalise({"schemas": [CORE], **body}, USER)


def test_string_values_are_stored_as_sent():
    doc, _ = normalise(
        {"schemas": [CORE], "userName": "  Ann ", "displayName": "", "title": "Ünïcode"}, USER
    )
    assert (doc["userName"], doc["displayName"], doc["title"]) == ("  Ann ", "", "Ünïcode")


def test_a_name_resolves_alike_however_it_is_spelled():
    first = USER.resolve(None, "userName")
    assert first is not None
    assert USER.resolve(None, "USERNAME") == first
    assert USER.resolve(CORE.upper(), "username") == first
    assert USER.resolve(None, "userName") is first


def test_an_unknown_name_resolves_to_nothing_every_time():
    assert USER.resolve(None, "shoeSize") is None
    assert USER.resolve(None, "shoeSize") is None
    assert USER.resolve(ENTERPRISE, "shoeSize") is None
