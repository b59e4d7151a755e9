"""Relaying directory changes to a SCIM 2.0 target: real dispatcher, real RQ workers, and
as the target a second instance of the bridge's own SCIM endpoint on 127.0.0.1 (its own
Redis key prefix), behind a recorder that can also fail, lose or refuse requests."""

from __future__ import annotations

from tests.delivery.downstream import create_user, remote_id, set_title
from tests.factories import ENTERPRISE, entra_group, entra_user, patch
from tests.fakes.scim_oauth import TokenEndpoint
from tests.live_server import serve
from workers.context import context

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


# --- users --------------------------------------------------------------------------------
def test_created_user_is_posted_with_its_schemas_and_scim_headers(
    scim, pipeline, add_target, downstream
):
    target = add_target()
    user = create_user(scim, title="Engineer")
    pipeline.run()
    copy = downstream.user(user["userName"])
    assert copy is not None and copy["id"] != user["id"]
    assert (copy["externalId"], copy["title"], copy["active"]) == (
        user["externalId"],
        "Engineer",
        True,
    )
    assert copy["emails"] == user["emails"]
    assert remote_id(target, "user", user["id"]) == copy["id"]
    get, post = downstream.recorder.requests
    assert (get.method, get.query["filter"]) == ("GET", f'userName eq "{user["userName"]}"')
    assert post.method == "POST" and post.path == "/scim/v2/Users"
    assert post.body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
    assert post.headers["Content-Type"] == "application/scim+json"
    assert post.headers["Accept"] == "application/scim+json"
    assert post.headers["Idempotency-Key"].startswith("msg_")


def test_attribute_mapping_shapes_the_remote_account(scim, pipeline, add_target, downstream):
    add_target(
        user_mapping={
            "userName": {"lower": "userName"},
            "externalId": "externalId",
            "displayName": {"join": ["name.givenName", "name.familyName"]},
            "emails": "emails",
            f"{ENTERPRISE}:department": {"const": "R&D"},
        }
    )
    user = create_user(scim, userName="Ada.Lovelace@Contoso.com")
    pipeline.run()
    copy = downstream.user("ada.lovelace@contoso.com")
    assert copy["userName"] == "ada.lovelace@contoso.com"
    assert copy["displayName"] == "givenName familyName"
    assert copy[ENTERPRISE] == {"department": "R&D"}
    assert ENTERPRISE in copy["schemas"]
    assert "name" not in copy and "title" not in copy
    assert copy["externalId"] == user["externalId"]


def test_update_patches_only_the_changed_attributes(scim, pipeline, add_target, downstream):
    target = add_target()
    user = create_user(scim, title="Engineer")
    pipeline.run()
    downstream.recorder.clear()
    set_title(scim, user, "CTO")
    scim.patch(
        f"/Users/{user['id']}",
        json=patch({"op": "Remove", "path": "name.formatted"}),
    )
    pipeline.run()
    rid = remote_id(target, "user", user["id"])
    calls = downstream.recorder.calls()
    assert calls[-1] == ("PATCH", f"/scim/v2/Users/{rid}")
    assert [c for c in calls if c[0] != "GET"] == [("PATCH", f"/scim/v2/Users/{rid}")]
    body = downstream.recorder.writes()[0].body
    assert body["schemas"] == [PATCH_OP]
    assert sorted(body["Operations"], key=lambda op: op["path"]) == [
        {"op": "remove", "path": "name.formatted"},
        {"op": "replace", "path": "title", "value": "CTO"},
    ]
    copy = downstream.user(user["userName"])
    assert copy["title"] == "CTO" and "formatted" not in copy["name"]


def test_an_update_that_changes_nothing_the_target_sees_sends_nothing(
    scim, pipeline, add_target, downstream
):
    add_target(user_mapping={"userName": "userName", "externalId": "externalId"})
    user = create_user(scim)
    pipeline.run()
    downstream.recorder.clear()
    set_title(scim, user, "not mapped")
    pipeline.run()
    assert downstream.recorder.writes() == []


def test_disabled_user_is_deactivated_then_reactivated(scim, pipeline, add_target, downstream):
    add_target()
    user = create_user(scim)
    pipeline.run()
    downstream.recorder.clear()
    for value in ("False", "True"):
        scim.patch(
            f"/Users/{user['id']}",
            json=patch({"op": "Replace", "path": "active", "value": value}),
        )
        pipeline.run()
        assert downstream.user(user["userName"])["active"] is (value == "True")
    operations = [w.body["Operations"] for w in downstream.recorder.writes()]
    assert operations == [
        [{"op": "replace", "path": "active", "value": False}],
        [{"op": "replace", "path": "active", "value": True}],
    ]


def test_delete_mode_deletes_the_remote_account(scim, pipeline, add_target, downstream):
    add_target(deprovision="delete")
    kept, disabled = create_user(scim), create_user(scim)
    pipeline.run()
    rid = downstream.user(disabled["userName"])["id"]
    scim.patch(
        f"/Users/{disabled['id']}",
        json=patch({"op": "Replace", "path": "active", "value": False}),
    )
    scim.delete(f"/Users/{kept['id']}")
    pipeline.run()
    assert downstream.users() == []
    assert ("DELETE", f"/scim/v2/Users/{rid}") in downstream.recorder.calls()


def test_first_contact_adopts_an_existing_account_instead_of_duplicating_it(
    scim, pipeline, add_target, downstream
):
    existing = downstream.scim.post("/Users", json=entra_user(title="old")).json
    target = add_target()
    user = create_user(
        scim, userName=existing["userName"].upper(), externalId=existing["externalId"]
    )
    set_title(scim, user, "new")
    pipeline.run()
    assert [u["id"] for u in downstream.users()] == [existing["id"]]
    copy = downstream.user(existing["userName"])
    assert copy["title"] == "new" and copy["emails"] == user["emails"]
    assert remote_id(target, "user", user["id"]) == existing["id"]
    assert [w.method for w in downstream.recorder.writes()] == ["PATCH"]


def test_conflict_on_create_is_resolved_by_matching(scim, pipeline, add_target, downstream):
    """The target holds the account under another userName: the userName lookup misses,
    the POST is refused with 409 (RFC 7644 §3.3), the externalId lookup finds it."""
    existing = downstream.scim.post("/Users", json=entra_user()).json
    target = add_target()
    user = create_user(scim, externalId=existing["externalId"])
    pipeline.run()
    assert [u["id"] for u in downstream.users()] == [existing["id"]]
    assert downstream.user(user["userName"])["id"] == existing["id"]
    assert remote_id(target, "user", user["id"]) == existing["id"]
    post = next(r for r in downstream.recorder.requests if r.method == "POST")
    assert post.status == 409


def test_lost_answer_to_a_create_does_not_duplicate_on_retry(
    scim, pipeline, add_target, downstream
):
    downstream.recorder.lose_next, downstream.recorder.lose_method = 1, "POST"
    target = add_target()
    user = create_user(scim)
    pipeline.run()
    assert len(downstream.users()) == 1
    assert remote_id(target, "user", user["id"]) == downstream.users()[0]["id"]


def test_account_deleted_on_the_target_is_created_again_on_update(
    scim, pipeline, add_target, downstream
):
    target = add_target()
    user = create_user(scim)
    pipeline.run()
    old = remote_id(target, "user", user["id"])
    assert downstream.scim.delete(f"/Users/{old}").status_code == 204
    set_title(scim, user, "CTO")
    pipeline.run()
    copy = downstream.user(user["userName"])
    assert copy["title"] == "CTO" and copy["id"] != old
    assert remote_id(target, "user", user["id"]) == copy["id"]
    statuses = [(r.method, r.status) for r in downstream.recorder.writes()]
    assert statuses[-2:] == [("PATCH", 404), ("POST", 201)]


# --- a target without PATCH ---------------------------------------------------------------
def test_target_without_patch_gets_put(scim, pipeline, add_target, downstream):
    downstream.recorder.no_patch = True
    target = add_target()
    user = create_user(scim)
    group = scim.post("/Groups", json=entra_group()).json
    pipeline.run()
    set_title(scim, user, "CTO")
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    pipeline.run()
    assert "PATCH" not in {m for m, _ in downstream.recorder.calls()}
    rid = remote_id(target, "user", user["id"])
    assert downstream.user(user["userName"])["title"] == "CTO"
    assert [m["value"] for m in downstream.group(group["displayName"])["members"]] == [rid]
    spc = [p for _, p in downstream.recorder.calls() if p.endswith("/ServiceProviderConfig")]
    assert len(spc) == 1, "patch support is looked up once per connector"


# --- failures, auth -----------------------------------------------------------------------
def test_target_failing_then_recovering_converges(scim, pipeline, add_target, downstream):
    target = add_target()
    downstream.recorder.fail_next, downstream.recorder.fail_method = 2, "POST"
    user = create_user(scim)
    pipeline.run()
    assert [u["userName"] for u in downstream.users()] == [user["userName"]]
    posts = [r for r in downstream.recorder.requests if r.method == "POST"]
    assert [p.status for p in posts] == [500, 500, 201]
    assert len({p.headers["Idempotency-Key"] for p in posts}) == 1
    log = context().deliveries.log(target["id"])
    assert [e["outcome"] for e in reversed(log)] == ["failed", "failed", "delivered"]


def test_client_error_is_dead_lettered_at_once(scim, pipeline, add_target, downstream):
    target = add_target()
    downstream.recorder.fail_next, downstream.recorder.fail_status = 100, 400
    create_user(scim)
    pipeline.run()
    assert [d["attempts"] for d in context().deliveries.parked(target["id"], "dead")] == [1]


def test_oauth2_client_credentials_token_is_fetched_once(scim, pipeline, add_target, downstream):
    endpoint = TokenEndpoint("bridge", "client-secret", access_token=downstream.secret)
    with serve(endpoint) as token_url:
        add_target(
            auth={
                "type": "oauth2",
                "token_url": f"{token_url}/token",
                "client_id": "bridge",
                "client_secret": "client-secret",
            }
        )
        users = []
        for _ in range(3):
            users.append(create_user(scim))
            pipeline.run()
    assert {u["userName"] for u in downstream.users()} == {u["userName"] for u in users}
    assert endpoint.calls == 1
    assert all(
        r.headers["Authorization"] == f"Bearer {downstream.secret}"
        for r in downstream.recorder.requests
    )


def test_check_reads_the_service_provider_config(add_target, downstream):
    target = add_target()
    connector = context().connector(context().targets.get(target["id"]))
    assert connector.check().status == 200
