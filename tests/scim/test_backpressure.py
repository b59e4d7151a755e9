"""Backpressure: past the relay's backlog, SCIM writes are 429 with Retry-After; reads work."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app import create_app
from bridge.scim.backpressure import CHECK_INTERVAL_SECONDS, RETRY_AFTER_SECONDS, Backpressure
from bridge.scim.service import ResourceService
from tests.conftest import ScimClient
from tests.factories import entra_group, entra_user, patch

MAX_BACKLOG = 5


@pytest.fixture
def backlogged(settings, redis_client):
    app = create_app(replace(settings, max_backlog=MAX_BACKLOG))
    _, token = app.extensions["bridge"].tokens.create("t")
    yield ScimClient(app.test_client(), token)
    app.extensions["bridge"].redis.close()


def fill_stream(redis_client, entries: int) -> None:
    for i in range(entries):
        redis_client.xadd("bridge:changes", {"kind": "user", "id": str(i), "op": "updated"})


def test_writes_past_the_change_stream_backlog_are_429_and_reads_still_work(
    backlogged, redis_client
):
    state = backlogged.client.application.extensions["bridge"]
    user = {
        "id": ResourceService(state.directory, state.resource_types["User"])
        .create(entra_user())
        .record.id
    }
    fill_stream(redis_client, MAX_BACKLOG + 1)
    writes = [
        backlogged.post("/Users", json=entra_user()),
        backlogged.patch(
            f"/Users/{user['id']}", json=patch({"op": "replace", "path": "title", "value": "x"})
        ),
        backlogged.put(f"/Users/{user['id']}", json=entra_user()),
        backlogged.delete(f"/Users/{user['id']}"),
        backlogged.post(
            "/Bulk",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [],
            },
        ),
    ]
    for response in writes:
        assert response.status_code == 429
        assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert backlogged.get(f"/Users/{user['id']}").status_code == 200
    assert backlogged.get("/Users").status_code == 200
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    assert backlogged.post("/Users/.search", json=search).status_code == 200


def test_writes_past_the_delivery_queue_backlog_are_429(backlogged, redis_client):
    redis_client.rpush("rq:queue:bridge", *[f"job{i}" for i in range(3)])
    redis_client.rpush("rq:queue:bridge-deprovision", *[f"job{i}" for i in range(3)])
    assert backlogged.post("/Groups", json=entra_group()).status_code == 429


def test_writes_at_the_backlog_limit_go_through(backlogged, redis_client):
    redis_client.rpush("rq:queue:bridge", *[f"job{i}" for i in range(MAX_BACKLOG)])
    assert backlogged.post("/Groups", json=entra_group()).status_code == 201


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def xlen_calls(redis_client) -> int:
    return int(redis_client.info("commandstats").get("cmdstat_xlen", {}).get("calls", 0))


def test_the_backlog_is_read_at_most_once_per_interval(redis_client):
    clock = Clock()
    backpressure = Backpressure(redis_client, "bridge:changes", MAX_BACKLOG, clock=clock)
    redis_client.config_resetstat()
    for _ in range(100):
        assert not backpressure.overloaded()
    assert xlen_calls(redis_client) == 1
    fill_stream(redis_client, MAX_BACKLOG + 1)
    assert not backpressure.overloaded()  # still the value read a moment ago
    clock.now += CHECK_INTERVAL_SECONDS
    assert backpressure.overloaded()
    assert xlen_calls(redis_client) == 2


def test_max_backlog_zero_turns_backpressure_off(redis_client):
    fill_stream(redis_client, 10)
    redis_client.config_resetstat()
    assert not Backpressure(redis_client, "bridge:changes", 0).overloaded()
    assert xlen_calls(redis_client) == 0
