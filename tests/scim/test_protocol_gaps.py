"""What third-party conformance suites check: root search, extension URN paths, path spellings."""

from __future__ import annotations

import pytest

from tests.factories import ENTERPRISE, entra_group, entra_user, patch

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
def one_of_each(scim) -> tuple[dict, dict]:
    user = scim.post("/Users", json=entra_user()).json
    group = scim.post("/Groups", json=entra_group(members=[{"value": user["id"]}])).json
    return user, group


def search(scim, **params):
    return scim.post("/.search", json={"schemas": [SEARCH], **params})


def test_root_search_returns_every_type_with_its_resource_type(scim, one_of_each):
    """RFC 7644 §3.4.3: POST /.search at the root searches across resource types."""
    user, group = one_of_each
    body = search(scim).json
    assert body["totalResults"] == 2
    assert {(r["id"], r["meta"]["resourceType"]) for r in body["Resources"]} == {
        (user["id"], "User"),
        (group["id"], "Group"),
    }


def test_root_search_filter_on_an_attribute_of_one_type_finds_only_that_type(scim, one_of_each):
    user, _ = one_of_each
    body = search(scim, filter=f'userName eq "{user["userName"]}"').json
    assert [r["id"] for r in body["Resources"]] == [user["id"]]


def test_root_search_filter_no_type_knows_is_invalid_filter(scim, one_of_each):
    response = search(scim, filter='favouriteColour eq "blue"')
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidFilter"


def test_root_search_pages_across_types(scim, one_of_each):
    user, group = one_of_each
    first = search(scim, count=1).json
    second = search(scim, count=1, startIndex=2).json
    assert (first["totalResults"], second["totalResults"]) == (2, 2)
    assert [r["id"] for r in first["Resources"] + second["Resources"]] == [user["id"], group["id"]]


def test_root_search_sorts_across_types(scim, one_of_each):
    user, group = one_of_each
    body = search(scim, sortBy="meta.created", sortOrder="descending").json
    assert [r["id"] for r in body["Resources"]] == [group["id"], user["id"]]


def test_root_search_attributes_apply_to_the_types_that_have_them(scim, one_of_each):
    user, group = one_of_each
    body = search(scim, attributes=["userName", "displayName"]).json
    by_id = {r["id"]: r for r in body["Resources"]}
    assert by_id[user["id"]]["userName"] == user["userName"]
    assert "emails" not in by_id[user["id"]]
    assert by_id[group["id"]]["displayName"] == group["displayName"]
    assert "members" not in by_id[group["id"]]


def test_root_search_attribute_no_type_knows_is_invalid_value(scim, one_of_each):
    response = search(scim, attributes=["favouriteColour"])
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"


def test_patch_add_with_the_extension_urn_as_path_sets_its_attributes(scim, one_of_each):
    user, _ = one_of_each
    body = patch({"op": "add", "path": ENTERPRISE, "value": {"department": "Sales"}})
    response = scim.patch(f"/Users/{user['id']}", json=body)
    assert response.status_code == 200
    assert response.json[ENTERPRISE]["department"] == "Sales"
    assert ENTERPRISE in response.json["schemas"]


def test_patch_replace_with_the_extension_urn_as_path_keeps_other_attributes(scim, one_of_each):
    """RFC 7644 §3.5.2.3: sub-attributes not in the value are left unchanged."""
    user, _ = one_of_each
    path = f"/Users/{user['id']}"
    scim.patch(
        path, json=patch({"op": "add", "path": ENTERPRISE, "value": {"department": "Sales"}})
    )
    body = patch({"op": "replace", "path": ENTERPRISE, "value": {"costCenter": "42"}})
    stored = scim.patch(path, json=body).json[ENTERPRISE]
    assert stored == {"department": "Sales", "costCenter": "42"}


def test_patch_remove_with_the_extension_urn_as_path_drops_the_extension(scim, one_of_each):
    user, _ = one_of_each
    path = f"/Users/{user['id']}"
    scim.patch(
        path, json=patch({"op": "add", "path": ENTERPRISE, "value": {"department": "Sales"}})
    )
    response = scim.patch(path, json=patch({"op": "remove", "path": ENTERPRISE}))
    assert response.status_code == 200
    assert ENTERPRISE not in response.json
    assert ENTERPRISE not in response.json["schemas"]


def test_patch_extension_urn_path_with_a_non_object_value_is_invalid_value(scim, one_of_each):
    user, _ = one_of_each
    body = patch({"op": "replace", "path": ENTERPRISE, "value": "Sales"})
    response = scim.patch(f"/Users/{user['id']}", json=body)
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"


@pytest.mark.parametrize("path", ["/Users/", "/users", "/USERS/", "/groups", "/Groups/"])
def test_resource_endpoints_answer_with_a_trailing_slash_and_in_any_case(scim, one_of_each, path):
    response = scim.get(path)
    assert response.status_code == 200
    assert response.json["totalResults"] == 1


def test_resource_paths_with_a_trailing_slash_and_lower_case_reach_the_resource(scim, one_of_each):
    user, _ = one_of_each
    response = scim.get(f"/users/{user['id']}/")
    assert response.status_code == 200
    assert response.json["meta"]["location"].endswith(f"/Users/{user['id']}")


@pytest.mark.parametrize(
    "path", ["/serviceproviderconfig", "/resourcetypes/", "/ResourceTypes/user", "/schemas/"]
)
def test_discovery_endpoints_answer_in_any_case(scim, path):
    assert scim.get(path).status_code == 200


def test_lower_case_post_creates(scim):
    response = scim.post("/users/", json=entra_user())
    assert response.status_code == 201
    assert "/Users/" in response.headers["Location"]
