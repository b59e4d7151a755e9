"""RFC 7644 §3.7 Bulk operations: ``POST /Bulk`` with per-operation results."""

from __future__ import annotations

from tests.factories import entra_group, entra_user, patch

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
BASE = "https://bridge.test/scim/v2"


def bulk(scim, *operations: dict, **fields):
    body = {"schemas": [BULK_REQUEST], "Operations": list(operations), **fields}
    return scim.post("/Bulk", json=body)


def post(path: str, bulk_id: str, data: dict) -> dict:
    return {"method": "POST", "path": path, "bulkId": bulk_id, "data": data}


def create(scim, path: str, body: dict) -> dict:
    response = scim.post(path, json=body)
    assert response.status_code == 201, response.json
    return response.json


def results(response) -> list[dict]:
    assert response.status_code == 200, response.json
    assert response.json["schemas"] == [BULK_RESPONSE]
    return response.json["Operations"]


def user_names(scim, name: str) -> int:
    found = scim.get("/Users", query_string={"filter": f'userName eq "{name}"'})
    return found.json["totalResults"]


def test_rfc_example_group_member_references_user_created_in_same_request(scim):
    """RFC 7644 §3.7.2: a group POST lists "bulkId:qwerty", the user POSTed before it."""
    user = entra_user()
    response = bulk(
        scim,
        post("/Users", "qwerty", user),
        post(
            "/Groups",
            "ytrewq",
            entra_group(members=[{"type": "User", "value": "bulkId:qwerty"}]),
        ),
    )
    created_user, created_group = results(response)
    assert created_user["status"] == "201"
    assert created_group["status"] == "201"
    user_id = created_user["location"].rsplit("/", 1)[1]
    group = scim.get(created_group["location"].removeprefix(BASE)).json
    assert [m["value"] for m in group["members"]] == [user_id]
    assert scim.get(f"/Users/{user_id}").json["userName"] == user["userName"]


def test_response_reports_method_bulk_id_location_version_and_string_status(scim):
    """RFC 7644 §3.7.3: each result carries method, bulkId, version, location and status."""
    (result,) = results(bulk(scim, post("/Users", "qwerty", entra_user())))
    user = scim.get(result["location"].removeprefix(BASE)).json
    assert result == {
        "method": "POST",
        "bulkId": "qwerty",
        "location": f"{BASE}/Users/{user['id']}",
        "version": user["meta"]["version"],
        "status": "201",
    }


def test_failed_operation_is_reported_and_the_others_still_run(scim):
    """RFC 7644 §3.7.3: an error is that operation's ``response``; the rest go on."""
    taken = create(scim, "/Users", entra_user())
    later = entra_user()
    first, second = results(
        bulk(
            scim,
            post("/Users", "dup", entra_user(userName=taken["userName"])),
            post("/Users", "ok", later),
        )
    )
    assert first["status"] == "409"
    assert first["bulkId"] == "dup"
    assert first["response"]["schemas"] == [ERROR]
    assert first["response"]["status"] == "409"
    assert first["response"]["scimType"] == "uniqueness"
    assert "location" not in first
    assert second["status"] == "201"
    assert user_names(scim, later["userName"]) == 1


def test_failed_operation_leaves_no_record_behind(scim):
    """RFC 7644 §3.7: each operation is applied whole or not at all."""
    group = entra_group(members=[{"value": "no-such-user"}])
    (result,) = results(bulk(scim, post("/Groups", "g", group)))
    assert result["status"] == "400"
    assert result["response"]["scimType"] == "invalidValue"
    found = scim.get("/Groups", query_string={"filter": f'displayName eq "{group["displayName"]}"'})
    assert found.json["totalResults"] == 0


def test_fail_on_errors_stops_processing_after_that_many_errors(scim):
    """RFC 7644 §3.7.3: once failOnErrors errors occurred, the remaining operations are
    not processed and the results so far are returned."""
    taken = create(scim, "/Users", entra_user())
    skipped = entra_user()
    response = bulk(
        scim,
        post("/Users", "dup", entra_user(userName=taken["userName"])),
        post("/Users", "never", skipped),
        failOnErrors=1,
    )
    (only,) = results(response)
    assert only["bulkId"] == "dup"
    assert only["status"] == "409"
    assert user_names(scim, skipped["userName"]) == 0


def test_fail_on_errors_counts_errors_before_stopping(scim):
    """RFC 7644 §3.7.3: failOnErrors=2 tolerates the first error."""
    taken = create(scim, "/Users", entra_user())
    response = bulk(
        scim,
        post("/Users", "a", entra_user(userName=taken["userName"])),
        post("/Users", "b", entra_user()),
        post("/Users", "c", entra_user(userName=taken["userName"])),
        post("/Users", "d", entra_user()),
        failOnErrors=2,
    )
    assert [r["status"] for r in results(response)] == ["409", "201", "409"]


def test_more_operations_than_max_operations_is_413(scim, app):
    """RFC 7644 §3.7.4: a request above maxOperations is refused as a whole with 413."""
    limit = app.config["BRIDGE_SETTINGS"].bulk_max_operations
    operations = [post("/Users", f"u{i}", {"userName": f"u{i}"}) for i in range(limit + 1)]
    response = bulk(scim, *operations)
    assert response.status_code == 413
    assert response.json["status"] == "413"
    assert "maxOperations" in response.json["detail"]
    assert str(limit) in response.json["detail"]
    assert user_names(scim, "u0") == 0


def test_payload_larger_than_max_payload_size_is_413(scim, app):
    """RFC 7644 §3.7.4: a request above maxPayloadSize is refused with 413."""
    limit = app.config["BRIDGE_SETTINGS"].max_body_bytes
    user = entra_user(displayName="x" * limit)
    response = bulk(scim, post("/Users", "big", user))
    assert response.status_code == 413
    assert response.json["status"] == "413"


def test_forward_reference_runs_the_referenced_post_first(scim):
    """RFC 7644 §3.7.2: a bulkId may be referenced before the POST that defines it."""
    user = entra_user()
    group_result, user_result = results(
        bulk(
            scim,
            post("/Groups", "g", entra_group(members=[{"value": "bulkId:later"}])),
            post("/Users", "later", user),
        )
    )
    assert group_result["status"] == "201"
    assert user_result["status"] == "201"
    user_id = user_result["location"].rsplit("/", 1)[1]
    group = scim.get(group_result["location"].removeprefix(BASE)).json
    assert [m["value"] for m in group["members"]] == [user_id]


def test_bulk_id_in_path_names_the_created_resource(scim):
    """RFC 7644 §3.7.2: "bulkId:<id>" may stand for the id in an operation's path."""
    user = create(scim, "/Users", entra_user())
    group_result, patch_result = results(
        bulk(
            scim,
            post("/Groups", "g", entra_group()),
            {
                "method": "PATCH",
                "path": "/Groups/bulkId:g",
                "data": patch({"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
            },
        )
    )
    assert patch_result["status"] == "200"
    assert patch_result["location"] == group_result["location"]
    group = scim.get(group_result["location"].removeprefix(BASE)).json
    assert [m["value"] for m in group["members"]] == [user["id"]]


def test_circular_references_fail_with_409(scim):
    """RFC 7644 §3.7.1: operations whose bulkIds reference each other in a cycle may
    fail with 409 Conflict; nothing is created."""
    first, second = (
        entra_group(members=[{"value": "bulkId:b"}]),
        entra_group(members=[{"value": "bulkId:a"}]),
    )
    response = bulk(scim, post("/Groups", "a", first), post("/Groups", "b", second))
    for result in results(response):
        assert result["status"] == "409"
        assert result["response"]["status"] == "409"
        assert "cycle" in result["response"]["detail"]
    assert scim.get("/Groups").json["totalResults"] == 0


def test_self_reference_is_circular(scim):
    """RFC 7644 §3.7.1: a POST that references its own bulkId can never be resolved."""
    group = entra_group(members=[{"value": "bulkId:me"}])
    (result,) = results(bulk(scim, post("/Groups", "me", group)))
    assert result["status"] == "409"


def test_unknown_bulk_id_fails_that_operation_with_400(scim):
    """RFC 7644 §3.7.2: a reference to a bulkId no POST in the request defines is invalid."""
    group = entra_group(members=[{"value": "bulkId:nobody"}])
    (result,) = results(bulk(scim, post("/Groups", "g", group)))
    assert result["status"] == "400"
    assert result["response"]["scimType"] == "invalidValue"
    assert "nobody" in result["response"]["detail"]


def test_reference_to_a_failed_post_fails_the_referrer(scim):
    """RFC 7644 §3.7.2: when the referenced POST failed there is no id to substitute."""
    taken = create(scim, "/Users", entra_user())
    user_result, group_result = results(
        bulk(
            scim,
            post("/Users", "u", entra_user(userName=taken["userName"])),
            post("/Groups", "g", entra_group(members=[{"value": "bulkId:u"}])),
        )
    )
    assert user_result["status"] == "409"
    assert group_result["status"] == "400"
    assert group_result["response"]["scimType"] == "invalidValue"


def test_put_through_bulk_replaces_the_user(scim):
    """RFC 7644 §3.7 with §3.5.1: PUT replaces the resource and reports its new version."""
    user = create(scim, "/Users", entra_user())
    replacement = entra_user(userName=user["userName"], displayName="Replaced")
    (result,) = results(
        bulk(scim, {"method": "PUT", "path": f"/Users/{user['id']}", "data": replacement})
    )
    stored = scim.get(f"/Users/{user['id']}").json
    assert result["status"] == "200"
    assert result["location"] == f"{BASE}/Users/{user['id']}"
    assert result["version"] == stored["meta"]["version"] != user["meta"]["version"]
    assert stored["displayName"] == "Replaced"


def test_patch_through_bulk_modifies_the_user(scim):
    """RFC 7644 §3.7 with §3.5.2: PATCH applies its PatchOp to the resource."""
    user = create(scim, "/Users", entra_user())
    data = patch({"op": "Replace", "path": "active", "value": "False"})
    (result,) = results(
        bulk(scim, {"method": "PATCH", "path": f"/Users/{user['id']}", "data": data})
    )
    stored = scim.get(f"/Users/{user['id']}").json
    assert result["status"] == "200"
    assert result["version"] == stored["meta"]["version"]
    assert stored["active"] is False


def test_delete_through_bulk_removes_the_user(scim):
    """RFC 7644 §3.7 with §3.6: DELETE answers 204 and the resource is gone."""
    user = create(scim, "/Users", entra_user())
    (result,) = results(bulk(scim, {"method": "DELETE", "path": f"/Users/{user['id']}"}))
    assert result == {
        "method": "DELETE",
        "location": f"{BASE}/Users/{user['id']}",
        "status": "204",
    }
    assert scim.get(f"/Users/{user['id']}").status_code == 404


def test_delete_of_missing_resource_is_404_in_that_operation(scim):
    """RFC 7644 §3.7.3: a per-operation 404 is reported, not raised for the request."""
    (result,) = results(bulk(scim, {"method": "DELETE", "path": "/Users/missing"}))
    assert result["status"] == "404"
    assert result["response"]["status"] == "404"


def test_version_mismatch_fails_that_operation_with_412(scim):
    """RFC 7644 §3.7.3: ``version`` works as If-Match; a stale one gives 412 for that op."""
    user = create(scim, "/Users", entra_user())
    stale = user["meta"]["version"]
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "replace", "path": "active", "value": False})
    )
    (result,) = results(
        bulk(
            scim,
            {
                "method": "PUT",
                "path": f"/Users/{user['id']}",
                "version": stale,
                "data": entra_user(userName=user["userName"], displayName="Lost update"),
            },
        )
    )
    assert result["status"] == "412"
    assert result["location"] == f"{BASE}/Users/{user['id']}"
    assert result["response"]["status"] == "412"
    assert scim.get(f"/Users/{user['id']}").json.get("displayName") != "Lost update"


def test_matching_version_applies_the_operation(scim):
    """RFC 7644 §3.7.3 with §3.14: the current version lets the operation through."""
    user = create(scim, "/Users", entra_user())
    (result,) = results(
        bulk(
            scim,
            {
                "method": "DELETE",
                "path": f"/Users/{user['id']}",
                "version": user["meta"]["version"],
            },
        )
    )
    assert result["status"] == "204"


def test_method_is_case_insensitive(scim):
    """RFC 7644 §3.7: ``method`` names an HTTP method; "post" is accepted as POST."""
    (result,) = results(
        bulk(scim, {"method": "post", "path": "/Users", "bulkId": "x", "data": entra_user()})
    )
    assert result["method"] == "POST"
    assert result["status"] == "201"


def test_post_without_bulk_id_fails_with_400(scim):
    """RFC 7644 §3.7: bulkId is REQUIRED when method is POST."""
    (result,) = results(bulk(scim, {"method": "POST", "path": "/Users", "data": entra_user()}))
    assert result["status"] == "400"
    assert result["response"]["scimType"] == "invalidValue"


def test_malformed_operations_are_reported_per_operation(scim):
    """RFC 7644 §3.7.3: a bad method or path fails that operation only."""
    response = bulk(
        scim,
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "path": "/Widgets", "bulkId": "w", "data": {}},
        {"method": "PUT", "path": "/Users", "data": entra_user()},
        "not an object",
    )
    assert [r["status"] for r in results(response)] == ["400", "404", "405", "400"]


def test_duplicate_bulk_id_fails_the_later_post(scim):
    """RFC 7644 §3.7: a bulkId identifies one POST within the request."""
    first, second = results(
        bulk(scim, post("/Users", "same", entra_user()), post("/Users", "same", entra_user()))
    )
    assert first["status"] == "201"
    assert second["status"] == "400"


def test_request_without_bulk_request_schema_is_400(scim):
    """RFC 7644 §3.7: the body's schemas must name the BulkRequest message."""
    response = scim.post("/Bulk", json={"schemas": [], "Operations": []})
    assert response.status_code == 400
    assert response.json["scimType"] == "invalidValue"


def test_fail_on_errors_must_be_a_positive_integer(scim):
    """RFC 7644 §3.7: failOnErrors is an integer; zero or a string is refused."""
    assert bulk(scim, failOnErrors=0).status_code == 400
    assert bulk(scim, failOnErrors="1").status_code == 400


def test_empty_bulk_request_returns_empty_response(scim):
    """RFC 7644 §3.7.3: the BulkResponse lists one result per processed operation."""
    assert results(bulk(scim)) == []


def test_bulk_requires_a_bearer_token(app):
    """RFC 7644 §2: every endpoint, /Bulk included, is authenticated."""
    response = app.test_client().post("/scim/v2/Bulk", json={"schemas": [BULK_REQUEST]})
    assert response.status_code == 401
