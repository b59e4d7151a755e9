"""Which attributes a resource is returned with (RFC 7643 §2.2 ``returned``; RFC 7644
§3.4.2.5 ``attributes`` and ``excludedAttributes``)."""

from __future__ import annotations

from bridge.directory.stored import Record
from bridge.scim.attributes import Attribute, Schema
from bridge.scim.render import parse_projection, render
from bridge.scim.resource_types import ResourceType

URN = "urn:example:params:scim:schemas:Thing"
THING = ResourceType(
    "Thing",
    "Thing",
    "/Things",
    "test type",
    Schema(
        URN,
        "Thing",
        "",
        (
            Attribute("label"),
            Attribute("secret", returned="never"),
            Attribute("detail", returned="request"),
            Attribute("badge", returned="always"),
        ),
    ),
    (),
)
DOC = {"schemas": [URN], "label": "a", "secret": "s", "detail": "d", "badge": "b"}
BASE = "https://bridge.test/scim/v2"


def _rendered(attributes: str | None = None, excluded: str | None = None) -> dict:
    record = Record("user", "0123456789abcdef0123456789abcdef", 3, "t0", "t1", dict(DOC))
    return render(record, THING, BASE, parse_projection(attributes, excluded, THING))


def test_by_default_every_attribute_but_never_and_request_ones():
    body = _rendered()
    assert {k for k in body if k in DOC} == {"schemas", "label", "badge"}
    assert body["id"] == "0123456789abcdef0123456789abcdef"
    assert body["meta"]["location"] == f"{BASE}/Things/0123456789abcdef0123456789abcdef"
    assert body["meta"]["version"] == 'W/"3"'


def test_a_request_attribute_is_returned_when_named():
    body = _rendered(attributes="detail")
    assert body["detail"] == "d"
    assert "label" not in body
    assert body["badge"] == "b"  # returned always


def test_a_never_attribute_is_not_returned_even_when_named():
    assert "secret" not in _rendered(attributes="secret,label")


def test_excluded_attributes_drop_default_ones_but_not_always_ones():
    body = _rendered(excluded="label,badge")
    assert "label" not in body
    assert body["badge"] == "b"
