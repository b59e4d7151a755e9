"""Every write is atomic in Redis: concurrent requests against a real threaded server."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bridge.scim.errors import ScimError
from bridge.scim.service import ResourceService
from tests.factories import entra_group, entra_user, patch
from tests.live_server import serve


@pytest.fixture
def live(app, token):
    with serve(app) as base:
        with httpx.Client(
            base_url=f"{base}/scim/v2",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as client:
            yield client


def test_two_concurrent_creates_of_one_username_give_one_201_and_one_409(live):
    for _ in range(10):
        body = entra_user()
        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(
                pool.map(
                    lambda b: live.post("/Users", json=b).status_code,
                    [body, dict(body, externalId="x" + body["externalId"])],
                )
            )
        assert statuses == [201, 409]


def test_fifty_concurrent_patches_adding_different_members_keep_all_fifty(live):
    group = live.post("/Groups", json=entra_group()).json()
    users = [live.post("/Users", json=entra_user()).json()["id"] for _ in range(50)]

    def add(user_id: str) -> int:
        body = patch({"op": "Add", "path": "members", "value": [{"value": user_id}]})
        return live.patch(f"/Groups/{group['id']}", json=body).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(add, users)) == {204}
    members = live.get(f"/Groups/{group['id']}").json()["members"]
    assert {m["value"] for m in members} == set(users)


def test_concurrent_attribute_patches_to_one_user_all_apply(live):
    """Read-modify-write PATCHes retry on a version conflict instead of losing updates."""
    user = live.post("/Users", json=entra_user()).json()
    paths = [
        "title",
        "nickName",
        "displayName",
        "userType",
        "locale",
        "timezone",
        "profileUrl",
        "preferredLanguage",
    ]

    def set_attr(path: str) -> int:
        body = patch({"op": "Replace", "path": path, "value": f"v-{path}"})
        return live.patch(f"/Users/{user['id']}", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(set_attr, paths)) == {200}
    stored = live.get(f"/Users/{user['id']}").json()
    assert {p: stored[p] for p in paths} == {p: f"v-{p}" for p in paths}


def test_concurrent_patches_adding_emails_to_one_user_all_apply(live):
    """Version races are retried inside the bridge, with jitter, until each write lands."""
    user = live.post("/Users", json=entra_user()).json()

    def add(i: int) -> int:
        value = [{"value": f"extra{i}@example.com", "type": "other"}]
        body = patch({"op": "add", "path": "emails", "value": value})
        return live.patch(f"/Users/{user['id']}", json=body).status_code

    with ThreadPoolExecutor(24) as pool:
        assert set(pool.map(add, range(24))) == {200}
    emails = {e["value"] for e in live.get(f"/Users/{user['id']}").json()["emails"]}
    assert {f"extra{i}@example.com" for i in range(24)} <= emails


def test_concurrent_patches_and_a_delete_leave_the_user_gone_and_unindexed(live, redis_client):
    user = live.post("/Users", json=entra_user()).json()
    path = f"/Users/{user['id']}"

    def act(i: int) -> int:
        if i == 12:
            return live.delete(path).status_code
        body = patch({"op": "replace", "path": "title", "value": f"t{i}"})
        return live.patch(path, json=body).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(act, range(24)))
    assert statuses[12] == 204
    assert set(statuses) <= {200, 204, 404}
    assert live.get(path).status_code == 404
    assert redis_client.hget("bridge:idx:user:userName", user["userName"].casefold()) is None
    assert not redis_client.exists(f"bridge:user:{user['id']}")


def test_a_409_for_a_duplicate_carries_scim_type_uniqueness(live):
    body = entra_user()
    live.post("/Users", json=body)
    response = live.post("/Users", json=dict(body, externalId="other"))
    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


def test_writes_that_keep_losing_the_race_end_in_a_409_with_a_scim_type(app):
    """With a single try, racing writers must sometimes lose; each loss is a 409 that says
    why (RFC 7644 §3.12), and the winners' writes are all stored."""
    state = app.extensions["bridge"]
    rtype = state.resource_types["User"]
    service = ResourceService(state.directory, rtype, write_retries=1)
    rid = service.create(entra_user()).record.id
    titles = itertools.count()

    def set_title(_: int) -> str:
        body = patch({"op": "replace", "path": "title", "value": f"t{next(titles)}"})
        try:
            service.patch(rid, body, None)
        except ScimError as exc:
            assert exc.status == 409
            return exc.to_scim()["scimType"]
        return "ok"

    outcomes: list[str] = []
    for _ in range(10):
        with ThreadPoolExecutor(8) as pool:
            outcomes += pool.map(set_title, range(8))
        if "mutability" in outcomes:
            break
    assert set(outcomes) == {"ok", "mutability"}
    assert service.get(rid).version == 1 + outcomes.count("ok")
