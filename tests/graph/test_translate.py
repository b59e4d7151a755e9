"""Graph → SCIM mapping: paths are SCIM PATCH paths (RFC 7644 §3.5.2) resolved against the
resource type, read and written as the SCIM endpoint reads and writes them."""

from __future__ import annotations

import json

import pytest

from bridge.graph.translate import ENTERPRISE, TranslationError
from tests.graph.views import users


@pytest.fixture
def mapping_file(tmp_path):
    def write(mapping: dict) -> str:
        path = tmp_path / "mapping.json"
        path.write_text(json.dumps(mapping))
        return str(path)

    return write


def test_override_maps_an_extension_attribute_and_drops_a_default(
    scim, reconcile, tenant, mapping_file
):
    ada = tenant.add_user(mailNickname="ada", department="Research", jobTitle="CTO")
    tenant.assign(ada["id"])
    path = mapping_file({f"{ENTERPRISE}:costCenter": "department", "title": None})
    reconcile(user_mapping_file=path)
    user = users(scim)["ada@contoso.test"]
    assert user[ENTERPRISE]["costCenter"] == "Research"
    assert "title" not in user


def test_work_email_is_found_whatever_the_case_of_its_type_and_patched_in_place(
    scim, reconcile, tenant
):
    """RFC 7643 §2.1: ``type`` (caseExact false) compares case-insensitively."""
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    scim.post(
        "/Users",
        json={"userName": "ada@contoso.test", "externalId": "ada", "active": True,
              "displayName": ada["displayName"],
              "name": {"givenName": ada["givenName"], "familyName": ada["surname"]},
              "emails": [{"type": "Work", "value": "old@contoso.test"}]},
    )  # fmt: skip
    report = reconcile()
    assert report["drift"]["attributes"] == 1
    assert users(scim)["ada@contoso.test"]["emails"] == [
        {"type": "Work", "value": "ada@contoso.test"}
    ]
    assert reconcile(full=True)["drift"]["attributes"] == 0


@pytest.mark.parametrize(
    ("mapping", "complaint"),
    [
        ({"favouriteColour": "jobTitle"}, "unknown attribute path"),
        ({"emails.value": "mail"}, "name one sub-attribute of one element"),
        ({"emails[value pr].value": "mail"}, "the filter must say which element"),
        ({"groups": "memberOf"}, "read-only"),
    ],
)
def test_mapping_the_directory_cannot_store_is_refused_before_graph_is_asked(
    runner, fake_graph, mapping_file, mapping, complaint
):
    path = mapping_file(mapping)
    with pytest.raises(TranslationError, match=complaint):
        runner(user_mapping_file=path).reconcile()
    assert fake_graph.graph_requests() == []
