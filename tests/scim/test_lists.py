"""Listing (RFC 7644 §3.4.2): pagination, sorting, attribute projection, /.search."""

from __future__ import annotations

from tests.factories import ENTERPRISE, entra_group, entra_user


def create_users(scim, n: int, **overrides) -> list[dict]:
    return [scim.post("/Users", json=entra_user(**overrides)).json for _ in range(n)]


def test_pagination_has_exact_total_and_stable_order(scim):
    users = create_users(scim, 7)
    page1 = scim.get("/Users", query_string={"startIndex": 1, "count": 3}).json
    page2 = scim.get("/Users", query_string={"startIndex": 4, "count": 3}).json
    page3 = scim.get("/Users", query_string={"startIndex": 7, "count": 3}).json
    assert [p["totalResults"] for p in (page1, page2, page3)] == [7, 7, 7]
    assert [p["itemsPerPage"] for p in (page1, page2, page3)] == [3, 3, 1]
    assert page2["startIndex"] == 4
    seen = [r["id"] for p in (page1, page2, page3) for r in p["Resources"]]
    assert seen == [u["id"] for u in users]


def test_count_zero_returns_only_the_total(scim):
    create_users(scim, 2)
    body = scim.get("/Users", query_string={"count": 0}).json
    assert body["totalResults"] == 2
    assert body["Resources"] == []


def test_start_index_below_one_is_treated_as_one(scim):
    """RFC 7644 §3.4.2.4: a startIndex less than 1 is interpreted as 1."""
    create_users(scim, 2)
    assert scim.get("/Users", query_string={"startIndex": -5}).json["startIndex"] == 1


def test_filtered_pagination(scim):
    create_users(scim, 5, title="Engineer")
    create_users(scim, 2, title="Sales")
    body = scim.get("/Users", query_string={"filter": 'title eq "engineer"', "count": 2}).json
    assert body["totalResults"] == 5
    assert len(body["Resources"]) == 2


def test_sort_by_username_descending(scim):
    for name in ("bravo", "alpha", "charlie"):
        scim.post("/Users", json=entra_user(userName=name))
    body = scim.get("/Users", query_string={"sortBy": "userName", "sortOrder": "descending"}).json
    assert [r["userName"] for r in body["Resources"]] == ["charlie", "bravo", "alpha"]


def test_sort_puts_missing_values_last_when_ascending(scim):
    scim.post("/Users", json=entra_user(userName="a", title="z"))
    scim.post("/Users", json=entra_user(userName="b"))
    scim.post("/Users", json=entra_user(userName="c", title="m"))
    body = scim.get("/Users", query_string={"sortBy": "title"}).json
    assert [r["userName"] for r in body["Resources"]] == ["c", "a", "b"]


def test_attributes_returns_only_those_plus_always_returned(scim):
    create_users(scim, 1)
    resource = scim.get("/Users", query_string={"attributes": "userName,name.givenName"}).json[
        "Resources"
    ][0]
    assert set(resource) == {"schemas", "id", "userName", "name"}
    assert resource["name"] == {"givenName": "givenName"}


def test_excluded_attributes_drops_them(scim):
    user = create_users(scim, 1)[0]
    resource = scim.get(
        f"/Users/{user['id']}", query_string={"excludedAttributes": "emails,name.formatted"}
    ).json
    assert "emails" not in resource
    assert "formatted" not in resource["name"]
    assert resource["id"] == user["id"]


def test_excluded_attributes_cannot_drop_id(scim):
    user = create_users(scim, 1)[0]
    resource = scim.get(f"/Users/{user['id']}", query_string={"excludedAttributes": "id"}).json
    assert resource["id"] == user["id"]


def test_extension_attribute_filter_and_projection(scim):
    scim.post("/Users", json=entra_user(**{ENTERPRISE: {"department": "Research"}}))
    scim.post("/Users", json=entra_user(**{ENTERPRISE: {"department": "Sales"}}))
    body = scim.get(
        "/Users",
        query_string={
            "filter": f'{ENTERPRISE}:department eq "Research"',
            "attributes": f"{ENTERPRISE}:department",
        },
    ).json
    assert body["totalResults"] == 1
    assert body["Resources"][0][ENTERPRISE] == {"department": "Research"}


def test_password_is_never_stored_or_returned(scim):
    user = scim.post("/Users", json=entra_user(password="hunter2")).json
    assert "password" not in user
    assert "password" not in scim.get(f"/Users/{user['id']}").json


def test_search_endpoint_accepts_a_search_request(scim):
    """RFC 7644 §3.4.3: POST /.search with a SearchRequest body."""
    user = create_users(scim, 1)[0]
    body = scim.post(
        "/Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'userName eq "{user["userName"]}"',
            "attributes": ["userName"],
        },
    ).json
    assert body["totalResults"] == 1
    assert set(body["Resources"][0]) == {"schemas", "id", "userName"}


def test_group_list_excluding_members(scim):
    scim.post("/Groups", json=entra_group())
    body = scim.get("/Groups", query_string={"excludedAttributes": "members"}).json
    assert body["totalResults"] == 1
    assert "members" not in body["Resources"][0]


def test_filter_on_group_members(scim):
    user = scim.post("/Users", json=entra_user()).json
    group = scim.post("/Groups", json=entra_group(members=[{"value": user["id"]}])).json
    scim.post("/Groups", json=entra_group())
    body = scim.get(
        "/Groups",
        query_string={
            "filter": f'members[value eq "{user["id"]}"]',
            "excludedAttributes": "members",
        },
    ).json
    assert [r["id"] for r in body["Resources"]] == [group["id"]]
    assert "members" not in body["Resources"][0]


def test_meta_last_modified_filter(scim):
    user = create_users(scim, 1)[0]
    body = scim.get(
        "/Users", query_string={"filter": f'meta.lastModified ge "{user["meta"]["lastModified"]}"'}
    ).json
    assert body["totalResults"] == 1
