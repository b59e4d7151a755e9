"""User operations as Microsoft Entra ID performs them ("Develop and plan provisioning for a
SCIM endpoint in Microsoft Entra ID", User Operations), plus RFC 7644 §3.3–3.6 semantics."""

from __future__ import annotations

import uuid

from tests.factories import ENTERPRISE, USER_SCHEMA, entra_user, patch


def create(scim, **overrides) -> dict:
    response = scim.post("/Users", json=entra_user(**overrides))
    assert response.status_code == 201, response.json
    return response.json


def test_create_user_returns_201_with_server_assigned_id_and_meta(scim):
    body = entra_user()
    response = scim.post("/Users", json=body)
    assert response.status_code == 201
    user = response.json
    assert user["id"] and user["id"] != body["externalId"]
    assert user["userName"] == body["userName"]
    assert user["emails"] == body["emails"]
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"] == f"https://bridge.test/scim/v2/Users/{user['id']}"
    assert response.headers["Location"] == user["meta"]["location"]
    assert response.headers["ETag"] == user["meta"]["version"]
    assert response.mimetype == "application/scim+json"


def test_create_user_ignores_client_supplied_id(scim):
    user = create(scim, id="chosen-by-client")
    assert user["id"] != "chosen-by-client"


def test_get_user_by_id(scim):
    user = create(scim)
    response = scim.get(f"/Users/{user['id']}")
    assert response.status_code == 200
    assert response.json["userName"] == user["userName"]
    assert response.json["groups"] == []


def test_get_user_by_username_filter(scim):
    user = create(scim)
    response = scim.get("/Users", query_string={"filter": f'userName eq "{user["userName"]}"'})
    assert response.status_code == 200
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert response.json["totalResults"] == 1
    assert response.json["Resources"][0]["id"] == user["id"]


def test_username_filter_is_case_insensitive(scim):
    user = create(scim)
    response = scim.get(
        "/Users", query_string={"filter": f'userName eq "{user["userName"].upper()}"'}
    )
    assert response.json["totalResults"] == 1


def test_test_connection_filter_on_random_guid_returns_empty_list(scim):
    """Entra's Test Connection queries a random GUID and expects 200 with no resources."""
    response = scim.get("/Users", query_string={"filter": f'userName eq "{uuid.uuid4()}"'})
    assert response.status_code == 200
    assert response.json["totalResults"] == 0
    assert response.json["Resources"] == []


def test_update_user_multi_valued_properties(scim):
    user = create(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch(
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updatedEmail@microsoft.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ),
    )
    assert response.status_code == 200
    assert response.json["emails"][0]["value"] == "updatedEmail@microsoft.com"
    assert response.json["name"]["familyName"] == "updatedFamilyName"


def test_update_user_single_valued_property(scim):
    user = create(scim)
    new_name = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    response = scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "userName", "value": new_name})
    )
    assert response.status_code == 200
    assert response.json["userName"] == new_name
    found = scim.get("/Users", query_string={"filter": f'userName eq "{new_name}"'})
    assert found.json["totalResults"] == 1
    old = scim.get("/Users", query_string={"filter": f'userName eq "{user["userName"]}"'})
    assert old.json["totalResults"] == 0


def test_disable_user_keeps_it_readable(scim):
    user = create(scim)
    response = scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": False})
    )
    assert response.status_code == 200
    assert response.json["active"] is False
    assert scim.get(f"/Users/{user['id']}").json["active"] is False


def test_disable_user_with_string_false_stores_a_boolean(scim):
    """Entra's default dialect sends booleans as strings."""
    user = create(scim)
    response = scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert response.json["active"] is False


def test_pathless_replace_with_enterprise_urn_keys(scim):
    user = create(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch(
            {
                "op": "replace",
                "value": {
                    "displayName": "Ada",
                    "active": "False",
                    f"{ENTERPRISE}:department": "Research",
                    "name.givenName": "Ada",
                },
            }
        ),
    )
    assert response.status_code == 200, response.json
    assert response.json["displayName"] == "Ada"
    assert response.json["active"] is False
    assert response.json[ENTERPRISE]["department"] == "Research"
    assert response.json["name"]["givenName"] == "Ada"


def test_delete_user_returns_204_then_404(scim):
    user = create(scim)
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    response = scim.get(f"/Users/{user['id']}")
    assert response.status_code == 404
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert response.json["status"] == "404"


def test_duplicate_username_is_409_uniqueness(scim):
    user = create(scim)
    response = scim.post("/Users", json=entra_user(userName=user["userName"].lower()))
    assert response.status_code == 409
    assert response.json["scimType"] == "uniqueness"


def test_duplicate_external_id_is_409_uniqueness(scim):
    user = create(scim)
    response = scim.post("/Users", json=entra_user(externalId=user["externalId"]))
    assert response.status_code == 409


def test_username_is_free_again_after_delete(scim):
    user = create(scim)
    scim.delete(f"/Users/{user['id']}")
    assert scim.post("/Users", json=entra_user(userName=user["userName"])).status_code == 201


def test_put_replaces_the_user(scim):
    user = create(scim)
    body = {"schemas": [USER_SCHEMA], "userName": user["userName"], "displayName": "Replaced"}
    response = scim.put(f"/Users/{user['id']}", json=body)
    assert response.status_code == 200
    assert response.json["displayName"] == "Replaced"
    assert "emails" not in response.json
    assert response.json["meta"]["created"] == user["meta"]["created"]


def test_patch_with_stale_if_match_is_412(scim):
    user = create(scim)
    scim.patch(f"/Users/{user['id']}", json=patch({"op": "replace", "path": "title", "value": "a"}))
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch({"op": "replace", "path": "title", "value": "b"}),
        headers={"If-Match": user["meta"]["version"]},
    )
    assert response.status_code == 412


def test_patch_that_changes_nothing_keeps_the_version(scim):
    user = create(scim)
    response = scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "replace", "path": "active", "value": True})
    )
    assert response.json["meta"]["version"] == user["meta"]["version"]


def test_missing_token_is_401_with_www_authenticate(scim):
    response = scim.client.get("/scim/v2/Users")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["status"] == "401"


def test_malformed_json_is_400_invalid_syntax(scim):
    response = scim.client.post(
        "/scim/v2/Users",
        data=b"{not json",
        headers={**scim.headers, "Content-Type": "application/scim+json"},
    )
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidSyntax"


def test_missing_username_is_400_invalid_value(scim):
    body = entra_user()
    del body["userName"]
    response = scim.post("/Users", json=body)
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"


def test_unknown_route_is_scim_404(scim):
    response = scim.get("/Nope")
    assert response.status_code == 404
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_wrong_method_is_scim_405(scim):
    response = scim.client.delete("/scim/v2/Users", headers=scim.headers)
    assert response.status_code == 405
    assert response.json["status"] == "405"


def test_users_can_be_queried_by_work_email(scim):
    """Entra can match users on ``emails[type eq "work"].value``."""
    user = create(scim)
    email = user["emails"][0]["value"]
    response = scim.get(
        "/Users", query_string={"filter": f'emails[type eq "work"].value eq "{email.upper()}"'}
    )
    assert [r["id"] for r in response.json["Resources"]] == [user["id"]]
