"""Relaying directory changes to a SCIM 2.0 target: real dispatcher, real RQ workers, and
as the target a second instance of the bridge's own SCIM endpoint on 127.0.0.1 (its own
Redis key prefix), behind a recorder that can also fail, lose or refuse requests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import httpx
import orjson
import pytest

from app import create_app
from bridge.targets.base import Change, TargetError
from bridge.targets.scim_client import ScimConnector, diff
from tests.conftest import ScimClient
from tests.factories import ENTERPRISE, entra_group, entra_user, patch, target_config
from tests.fakes.scim_oauth import TokenEndpoint
from tests.fakes.scim_recorder import ScimRecorder
from tests.live_server import serve
from workers.context import context

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Downstream:
    """The target: an app, the recorder in front of it, its URL and SCIM token."""

    app: object
    recorder: ScimRecorder
    url: str
    secret: str

    @property
    def scim(self) -> ScimClient:
        """The target's own SCIM API, bypassing the recorder."""
        return ScimClient(self.app.test_client(), self.secret)

    def users(self) -> list[dict]:
        return self.scim.get("/Users").json["Resources"]

    def user(self, user_name: str) -> dict | None:
        found = self.scim.get("/Users", query_string={"filter": f'userName eq "{user_name}"'})
        resources = found.json["Resources"]
        assert len(resources) <= 1
        return resources[0] if resources else None

    def group(self, display_name: str) -> dict | None:
        found = self.scim.get(
            "/Groups", query_string={"filter": f'displayName eq "{display_name}"'}
        )
        resources = found.json["Resources"]
        return resources[0] if resources else None


@pytest.fixture
def downstream(settings, app):
    target_app = create_app(dataclasses.replace(settings, key_prefix="downstream"))
    _, secret = target_app.extensions["bridge"].tokens.create("t")
    recorder = ScimRecorder(target_app)
    with serve(recorder) as base:
        yield Downstream(target_app, recorder, f"{base}/scim/v2", secret)
    target_app.extensions["bridge"].redis.close()


@pytest.fixture
def add_target(app, downstream):
    store = context().targets

    def add(**overrides) -> dict:
        defaults = {
            "name": "downstream",
            "kind": "scim",
            "url": downstream.url,
            "auth": {"type": "bearer", "token": downstream.secret},
        }
        return store.create(target_config(**{**defaults, **overrides}))

    return add


def create_user(scim, **overrides) -> dict:
    response = scim.post("/Users", json=entra_user(**overrides))
    assert response.status_code == 201, response.json
    return response.json


def set_title(scim, user: dict, title: str) -> None:
    response = scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "title", "value": title})
    )
    assert response.status_code == 200


def remote_id(target: dict, kind: str, rid: str) -> str:
    return context().deliveries.states(target["id"], kind, [rid])[rid]["remote_id"]


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


# --- groups -------------------------------------------------------------------------------
def test_group_members_are_translated_to_the_targets_ids(scim, pipeline, add_target, downstream):
    target = add_target()
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    copy = downstream.group(group["displayName"])
    remote_users = {downstream.user(u["userName"])["id"] for u in users}
    assert {m["value"] for m in copy["members"]} == remote_users
    assert remote_id(target, "group", group["id"]) == copy["id"]
    post = next(w for w in downstream.recorder.writes() if w.path.endswith("/Groups"))
    assert "members" not in post.body
    add = downstream.recorder.writes()[-1]
    assert add.body["Operations"] == [
        {
            "op": "add",
            "path": "members",
            "value": [{"value": m} for m in sorted_refs(target, users)],
        }
    ]


def test_group_deleted_on_the_target_is_created_again_with_all_its_members(
    scim, pipeline, add_target, downstream
):
    target = add_target()
    users = [create_user(scim) for _ in range(3)]
    group = scim.post(
        "/Groups", json=entra_group(members=[{"value": u["id"]} for u in users[:2]])
    ).json
    pipeline.run()
    old = remote_id(target, "group", group["id"])
    assert downstream.scim.delete(f"/Groups/{old}").status_code == 204
    add = patch({"op": "Add", "path": "members", "value": [{"value": users[2]["id"]}]})
    scim.patch(f"/Groups/{group['id']}", json=add)
    pipeline.run()
    copy = downstream.group(group["displayName"])
    assert copy["id"] != old
    assert {m["value"] for m in copy["members"]} == {
        downstream.user(u["userName"])["id"] for u in users
    }


def sorted_refs(target: dict, users: list[dict]) -> list[str]:
    return [remote_id(target, "user", u["id"]) for u in sorted(users, key=lambda u: u["id"])]


def test_removed_member_is_removed_on_the_target(scim, pipeline, add_target, downstream):
    target = add_target()
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    downstream.recorder.clear()
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Remove", "path": "members", "value": [{"value": users[0]["id"]}]}),
    )
    pipeline.run()
    gone = remote_id(target, "user", users[0]["id"])
    (write,) = downstream.recorder.writes()
    assert write.body["Operations"] == [{"op": "remove", "path": f'members[value eq "{gone}"]'}]
    members = downstream.group(group["displayName"])["members"]
    assert [m["value"] for m in members] == [remote_id(target, "user", users[1]["id"])]


def test_renamed_group_is_patched_and_deleted_group_is_deleted(
    scim, pipeline, add_target, downstream
):
    add_target()
    group = scim.post("/Groups", json=entra_group()).json
    pipeline.run()
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Replace", "path": "displayName", "value": "Renamed"}),
    )
    pipeline.run()
    assert downstream.group("Renamed") is not None
    scim.delete(f"/Groups/{group['id']}")
    pipeline.run()
    assert downstream.group("Renamed") is None


def test_joining_a_scoping_group_provisions_and_leaving_deactivates(
    scim, pipeline, add_target, downstream
):
    group = scim.post("/Groups", json=entra_group()).json
    add_target(scope={"type": "groups", "groups": [group["id"]]}, resources=["users"])
    user = create_user(scim)
    pipeline.run()
    assert downstream.users() == []
    add = patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]})
    scim.patch(f"/Groups/{group['id']}", json=add)
    pipeline.run()
    assert downstream.user(user["userName"])["active"] is True
    remove = patch({"op": "Remove", "path": f'members[value eq "{user["id"]}"]'})
    scim.patch(f"/Groups/{group['id']}", json=remove)
    pipeline.run()
    assert downstream.user(user["userName"])["active"] is False


def test_deleted_member_is_not_removed_by_our_id(scim, pipeline, add_target, downstream):
    add_target()
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    scim.delete(f"/Users/{users[0]['id']}")
    pipeline.run()
    assert len(downstream.group(group["displayName"])["members"]) == 1
    paths = [
        op.get("path", "")
        for w in downstream.recorder.writes()
        if w.body
        for op in w.body.get("Operations", [])
    ]
    assert not any(users[0]["id"] in p for p in paths)


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


# --- the connector on its own -------------------------------------------------------------
def connector_answering(handler) -> ScimConnector:
    return ScimConnector(
        "https://target.test/scim/v2", httpx.Client(transport=httpx.MockTransport(handler))
    )


def user_change(action="create", **state) -> Change:
    payload = {"userName": 'a"b\\c', "externalId": "x"}
    return Change("user", "u1", action, payload, state, "msg_key")


def test_filter_values_are_quoted_as_json_strings():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"totalResults": 0, "Resources": []})
        return httpx.Response(201, json={"id": "r1"})

    applied = connector_answering(handler).apply(user_change())
    assert seen[0].url.params["filter"] == 'userName eq "a\\"b\\\\c"'
    assert applied.remember["remote_id"] == "r1"
    assert applied.remember["sent"] == {"userName": 'a"b\\c', "externalId": "x", "active": True}


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>login</html>"),
        httpx.Response(200, json={"Resources": "none"}),
        httpx.Response(200, json=[1, 2]),
    ],
)
def test_a_target_answering_garbage_fails_without_retry(answer):
    with pytest.raises(TargetError) as err:
        connector_answering(lambda request: answer).apply(user_change())
    assert not err.value.retryable
    assert "unexpected answer" in str(err.value)


def test_a_created_resource_without_an_id_fails_without_retry():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"Resources": []})
        return httpx.Response(201, json={"userName": "x"})

    with pytest.raises(TargetError, match="without the new resource's id") as err:
        connector_answering(handler).apply(user_change())
    assert not err.value.retryable


def test_several_matching_accounts_are_not_guessed_between():
    both = [{"id": "1", "userName": 'A"B\\c'}, {"id": "2", "userName": 'a"b\\C'}]
    answer = httpx.Response(200, json={"Resources": both})
    with pytest.raises(TargetError, match="2 accounts match"):
        connector_answering(lambda request: answer).apply(user_change())


def test_server_errors_are_retryable_with_retry_after():
    answer = httpx.Response(503, headers={"Retry-After": "7"}, text="busy")
    with pytest.raises(TargetError) as err:
        connector_answering(lambda request: answer).apply(user_change())
    assert (err.value.retryable, err.value.retry_after, err.value.status) == (True, 7.0, 503)


def test_diff_compares_complex_attributes_and_extensions_one_level_down():
    old = {
        "title": "a",
        "name": {"givenName": "Ada", "middleName": "M"},
        ENTERPRISE: {"department": "R&D", "manager": {"value": "m1"}},
        "nickName": "x",
    }
    new = {
        "title": "a",
        "name": {"givenName": "Ada", "familyName": "L"},
        ENTERPRISE: {"department": "Ops", "manager": {"value": "m1"}},
        "emails": [{"value": "a@x"}],
    }
    assert diff(old, new) == [
        {"op": "replace", "path": "name.familyName", "value": "L"},
        {"op": "remove", "path": "name.middleName"},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Ops"},
        {"op": "replace", "path": "emails", "value": [{"value": "a@x"}]},
        {"op": "remove", "path": "nickName"},
    ]
    assert diff(old, new, removes=False) == [op for op in diff(old, new) if op["op"] == "replace"]


def test_members_are_sent_in_batches_with_their_own_idempotency_keys():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ServiceProviderConfig"):
            return httpx.Response(200, json={"patch": {"supported": True}})
        seen.append(request)
        return httpx.Response(204)

    ids = [f"u{n}" for n in range(150)]
    change = Change(
        "group",
        "g1",
        "none",
        {"displayName": "G"},
        {"remote_id": "rg", "sent": {"displayName": "G"}},
        "msg_key",
        members_added=ids[:120],
        members_removed=ids[120:] + ["unknown"],
        member_refs={uid: f"r-{uid}" for uid in ids},
    )
    applied = connector_answering(handler).apply(change)
    bodies = [orjson.loads(r.content)["Operations"] for r in seen]
    assert [len(b[0]["value"]) if b[0]["op"] == "add" else len(b) for b in bodies] == [100, 20, 30]
    assert bodies[2][0] == {"op": "remove", "path": 'members[value eq "r-u120"]'}
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert keys == ["msg_key_a0", "msg_key_a1", "msg_key_r0"]
    assert {r.url.path for r in seen} == {"/scim/v2/Groups/rg"}
    assert applied.remember["skipped_members"] == ["unknown"]


def test_first_contact_adopts_an_existing_group_by_display_name(
    scim, pipeline, add_target, downstream
):
    existing = downstream.scim.post("/Groups", json=entra_group()).json
    target = add_target()
    user = create_user(scim)
    group = scim.post(
        "/Groups",
        json=entra_group(displayName=existing["displayName"], members=[{"value": user["id"]}]),
    ).json
    pipeline.run()
    groups = downstream.scim.get("/Groups").json["Resources"]
    assert [g["id"] for g in groups] == [existing["id"]]
    assert remote_id(target, "group", group["id"]) == existing["id"]
    members = downstream.group(existing["displayName"])["members"]
    assert [m["value"] for m in members] == [remote_id(target, "user", user["id"])]


# --- membership whatever runs first -------------------------------------------------------
def test_deleted_member_is_removed_from_the_group_by_the_id_it_was_added_with(
    scim, pipeline, add_target, downstream
):
    """The user's delete runs first (it takes access away) and forgets the target's id for
    the user; the group still names that member by the id it was added with."""
    target = add_target(deprovision="delete")
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    gone = remote_id(target, "user", users[0]["id"])
    downstream.recorder.clear()
    scim.delete(f"/Users/{users[0]['id']}")
    pipeline.run()
    removals = [
        op["path"]
        for w in downstream.recorder.writes()
        if w.method == "PATCH"
        for op in w.body["Operations"]
        if op["op"] == "remove"
    ]
    assert removals == [f'members[value eq "{gone}"]']
    state = context().deliveries.states(target["id"], "group", [group["id"]])[group["id"]]
    assert list(state["members"]) == [users[1]["id"]]


def test_member_the_target_already_dropped_counts_as_removed(
    scim, pipeline, add_target, downstream
):
    """RFC 7644 §3.12: a remove whose filter matches nothing is ``noTarget``; the member is
    where it should be, so the delivery succeeds."""
    add_target()
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    copy = downstream.group(group["displayName"])
    downstream.scim.patch(
        f"/Groups/{copy['id']}",
        json=patch({"op": "replace", "path": "members", "value": []}),
    )
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Remove", "path": "members", "value": [{"value": users[0]["id"]}]}),
    )
    downstream.recorder.strict_removals = True
    pipeline.run()
    log = context().deliveries.log(context().targets.all()[0].id)
    assert log[0]["outcome"] == "delivered"


def test_re_enabled_user_gets_back_the_groups_they_are_in(scim, pipeline, add_target, downstream):
    """A group-scoped target added while a member was disabled: when the user is enabled,
    the target gets the user and then the user's membership of the group."""
    group = scim.post("/Groups", json=entra_group()).json
    user = create_user(scim, active=False)
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    pipeline.run()  # no target yet: the changes go nowhere
    target = add_target(scope={"type": "groups", "groups": [group["id"]]})
    context().jobs.sync_target(context().directory, target["id"])
    pipeline.run()
    assert downstream.user(user["userName"]) is None
    assert downstream.group(group["displayName"])["members"] == []
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": "True"})
    )
    pipeline.run()
    copy = downstream.user(user["userName"])
    assert [m["value"] for m in downstream.group(group["displayName"])["members"]] == [copy["id"]]


def test_group_created_before_its_members_gets_them_once_they_are_delivered(
    scim, pipeline, add_target, downstream
):
    """Planning a group delivers no users: the group is written with the members the
    target holds, and each member delivered later asks for the group again."""
    users = [create_user(scim) for _ in range(3)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()  # no target yet: the changes go nowhere
    target = add_target()
    ctx = context()
    ctx.jobs.deliver(target["id"], [["group", group["id"]]])
    pipeline.run()
    assert downstream.group(group["displayName"])["members"] == []
    assert downstream.users() == []
    ctx.jobs.deliver(target["id"], [["user", u["id"]] for u in users])
    pipeline.run()
    members = {m["value"] for m in downstream.group(group["displayName"])["members"]}
    assert members == {downstream.user(u["userName"])["id"] for u in users}


def test_disable_and_remove_from_groups_takes_the_user_out_and_enabling_puts_them_back(
    scim, pipeline, add_target, downstream
):
    add_target(deprovision="disable_and_remove_from_groups")
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    for value, expected in (("False", 1), ("True", 2)):
        scim.patch(
            f"/Users/{users[0]['id']}",
            json=patch({"op": "Replace", "path": "active", "value": value}),
        )
        pipeline.run()
        assert len(downstream.group(group["displayName"])["members"]) == expected
    assert downstream.user(users[0]["userName"])["active"] is True


def test_disable_mode_keeps_a_disabled_user_in_the_targets_groups(
    scim, pipeline, add_target, downstream
):
    add_target(deprovision="disable")
    user = create_user(scim)
    group = scim.post("/Groups", json=entra_group(members=[{"value": user["id"]}])).json
    pipeline.run()
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": "False"})
    )
    pipeline.run()
    assert downstream.user(user["userName"])["active"] is False
    assert len(downstream.group(group["displayName"])["members"]) == 1
