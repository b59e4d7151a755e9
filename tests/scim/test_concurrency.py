"""Every write is atomic in Redis: concurrent requests against a real threaded server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

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
