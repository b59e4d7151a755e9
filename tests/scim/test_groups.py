"""Group operations as Microsoft Entra ID performs them ("Develop and plan provisioning for a
SCIM endpoint in Microsoft Entra ID", Group Operations), plus RFC 7644 membership semantics."""

from __future__ import annotations

from tests.factories import ENTRA_GROUP_SCHEMA, entra_group, entra_user, patch


def create_user(scim) -> dict:
    response = scim.post("/Users", json=entra_user())
    assert response.status_code == 201, response.json
    return response.json


def create_group(scim, **overrides) -> dict:
    response = scim.post("/Groups", json=entra_group(**overrides))
    assert response.status_code == 201, response.json
    return response.json


def member_ids(scim, group_id: str) -> set[str]:
    return {m["value"] for m in scim.get(f"/Groups/{group_id}").json.get("members", [])}


def test_create_group_accepts_entra_group_schema_urn(scim):
    """Entra lists its own ADSCIM Group schema URN in ``schemas``; it carries no attributes."""
    response = scim.post("/Groups", json=entra_group())
    assert response.status_code == 201
    assert ENTRA_GROUP_SCHEMA not in response.json["schemas"]
    assert response.json["members"] == []


def test_get_group_excluding_members(scim):
    group = create_group(scim)
    response = scim.get(f"/Groups/{group['id']}", query_string={"excludedAttributes": "members"})
    assert response.status_code == 200
    assert "members" not in response.json
    assert response.json["displayName"] == group["displayName"]


def test_get_group_by_display_name_filter(scim):
    group = create_group(scim)
    response = scim.get(
        "/Groups",
        query_string={
            "excludedAttributes": "members",
            "filter": f'displayName eq "{group["displayName"]}"',
        },
    )
    assert response.json["totalResults"] == 1
    assert response.json["Resources"][0]["id"] == group["id"]
    assert "members" not in response.json["Resources"][0]


def test_update_group_display_name_returns_204(scim):
    group = create_group(scim)
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Replace", "path": "displayName", "value": "updatedDisplayName"}),
    )
    assert response.status_code == 204
    assert scim.get(f"/Groups/{group['id']}").json["displayName"] == "updatedDisplayName"


def test_add_members_entra_dialect(scim):
    group, user = create_group(scim), create_user(scim)
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch(
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user["id"]}]}
        ),
    )
    assert response.status_code == 204
    assert member_ids(scim, group["id"]) == {user["id"]}


def test_remove_members_entra_default_dialect(scim):
    group, a, b = create_group(scim), create_user(scim), create_user(scim)
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch(
            {"op": "Add", "path": "members", "value": [{"value": a["id"]}, {"value": b["id"]}]}
        ),
    )
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch(
            {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": a["id"]}]}
        ),
    )
    assert response.status_code == 204
    assert member_ids(scim, group["id"]) == {b["id"]}


def test_remove_member_by_value_filter_rfc_dialect(scim):
    """Entra with ?aadOptscim062020 sends ``members[value eq "…"]``."""
    group, a, b = create_group(scim), create_user(scim), create_user(scim)
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch(
            {"op": "add", "path": "members", "value": [{"value": a["id"]}, {"value": b["id"]}]}
        ),
    )
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "remove", "path": f'members[value eq "{a["id"]}"]'}),
    )
    assert member_ids(scim, group["id"]) == {b["id"]}


def test_adding_an_existing_member_succeeds_without_change(scim):
    group, user = create_group(scim), create_user(scim)
    body = patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]})
    scim.patch(f"/Groups/{group['id']}", json=body)
    version = scim.get(f"/Groups/{group['id']}").json["meta"]["version"]
    assert scim.patch(f"/Groups/{group['id']}", json=body).status_code == 204
    assert scim.get(f"/Groups/{group['id']}").json["meta"]["version"] == version


def test_removing_an_absent_member_succeeds(scim):
    group, user = create_group(scim), create_user(scim)
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Remove", "path": "members", "value": [{"value": user["id"]}]}),
    )
    assert response.status_code == 204


def test_adding_a_member_that_does_not_exist_is_400(scim):
    group = create_group(scim)
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": "no-such-user"}]}),
    )
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"


def test_add_hundreds_of_members_in_one_patch(scim):
    group = create_group(scim)
    users = [create_user(scim)["id"] for _ in range(300)]
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": u} for u in users]}),
    )
    assert response.status_code == 204
    assert member_ids(scim, group["id"]) == set(users)


def test_user_groups_attribute_is_derived_from_memberships(scim):
    group, user = create_group(scim), create_user(scim)
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    groups = scim.get(f"/Users/{user['id']}").json["groups"]
    assert [g["value"] for g in groups] == [group["id"]]


def test_deleting_a_user_removes_it_from_every_group(scim):
    g1, g2, user, other = (
        create_group(scim),
        create_group(scim),
        create_user(scim),
        create_user(scim),
    )
    for g in (g1, g2):
        scim.patch(
            f"/Groups/{g['id']}",
            json=patch(
                {
                    "op": "Add",
                    "path": "members",
                    "value": [{"value": user["id"]}, {"value": other["id"]}],
                }
            ),
        )
    scim.delete(f"/Users/{user['id']}")
    assert member_ids(scim, g1["id"]) == {other["id"]}
    assert member_ids(scim, g2["id"]) == {other["id"]}


def test_deleting_a_group_clears_its_members_groups_attribute(scim):
    group, user = create_group(scim), create_user(scim)
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert scim.get(f"/Users/{user['id']}").json["groups"] == []


def test_duplicate_display_name_is_409(scim):
    group = create_group(scim)
    response = scim.post("/Groups", json=entra_group(displayName=group["displayName"]))
    assert response.status_code == 409
    assert response.json["scimType"] == "uniqueness"


def test_create_group_with_members(scim):
    user = create_user(scim)
    response = scim.post("/Groups", json=entra_group(members=[{"value": user["id"]}]))
    assert response.status_code == 201
    assert [m["value"] for m in response.json["members"]] == [user["id"]]
    assert response.json["members"][0]["type"] == "User"


def test_replace_members_with_put(scim):
    a, b = create_user(scim), create_user(scim)
    group = scim.post("/Groups", json=entra_group(members=[{"value": a["id"]}])).json
    body = {
        "schemas": group["schemas"],
        "displayName": group["displayName"],
        "members": [{"value": b["id"]}],
    }
    response = scim.put(f"/Groups/{group['id']}", json=body)
    assert response.status_code == 200
    assert [m["value"] for m in response.json["members"]] == [b["id"]]
    assert scim.get(f"/Users/{a['id']}").json["groups"] == []


def test_remove_all_members(scim):
    """RFC 7644 §3.5.2.2: remove with path "members" and no value removes them all."""
    a = create_user(scim)
    group = scim.post("/Groups", json=entra_group(members=[{"value": a["id"]}])).json
    scim.patch(f"/Groups/{group['id']}", json=patch({"op": "remove", "path": "members"}))
    assert member_ids(scim, group["id"]) == set()
