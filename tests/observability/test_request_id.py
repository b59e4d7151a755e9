"""A request id is accepted or made, echoed, and carried into the change stream and the
delivery jobs."""

from __future__ import annotations

import pytest

from bridge.directory.records import IndexValues
from bridge.observability import request_context
from bridge.observability.request_context import MAX_LENGTH
from workers.context import context


def test_a_sane_request_id_is_echoed(scim):
    response = scim.get("/Users", headers={"X-Request-Id": "entra-4f1c.42"})
    assert response.headers["X-Request-Id"] == "entra-4f1c.42"


def test_a_missing_request_id_is_generated(scim):
    first = scim.get("/Users").headers["X-Request-Id"]
    second = scim.get("/Users").headers["X-Request-Id"]
    assert len(first) == 32 and first != second


def test_an_insane_request_id_is_replaced(scim):
    for bad in ("has space", "x" * (MAX_LENGTH + 1), 'quote"d', "new\\nline"):
        echoed = scim.get("/Users", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert echoed != bad and len(echoed) == 32


def test_an_unauthenticated_request_gets_a_request_id_too(app):
    response = app.test_client().get("/scim/v2/Users", headers={"X-Request-Id": "r-401"})
    assert response.status_code == 401
    assert response.headers["X-Request-Id"] == "r-401"


def test_admin_responses_carry_the_request_id(admin):
    response = admin.client.get("/admin/status", headers={**admin.headers, "X-Request-Id": "a-2"})
    assert response.headers["X-Request-Id"] == "a-2"


def test_a_write_puts_its_request_id_in_the_change_stream_entry(create_user, redis_client):
    create_user("req-create-1")
    (_, fields), *_ = redis_client.xrange("bridge:changes")
    assert fields[b"req"] == b"req-create-1"


def test_a_delete_puts_its_request_id_in_every_entry_it_appends(scim, create_user, redis_client):
    user = create_user()
    group = scim.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "g-del",
            "members": [{"value": user["id"]}],
        },
    ).json
    redis_client.delete("bridge:changes")
    scim.delete(f"/Users/{user['id']}", headers={"X-Request-Id": "req-delete"})
    entries = [fields for _, fields in redis_client.xrange("bridge:changes")]
    assert {e[b"id"].decode() for e in entries} == {user["id"], group["id"]}
    assert {e[b"req"] for e in entries} == {b"req-delete"}


def test_a_write_outside_a_request_carries_no_request_id(app, redis_client):
    directory = app.extensions["bridge"].directory
    directory.create("user", {"userName": "n"}, IndexValues({}, {}), "2026-01-01T00:00:00Z")
    (_, fields), *_ = redis_client.xrange("bridge:changes")
    assert b"req" not in fields


def test_the_dispatcher_hands_the_request_id_to_the_job_that_takes_the_change(
    hook, create_user, pipeline
):
    target = hook()
    user = create_user("req-to-job")
    pipeline.dispatcher.drain()
    ctx = context()
    origins: dict[str, str] = {}
    ctx.deliveries.take_pending(target["id"], "changes", "job-under-test", origins)
    assert origins == {f"user:{user['id']}": "req-to-job"}


def test_a_retry_job_carries_the_request_id_in_its_kwargs_and_meta(app):
    ctx = context()
    ctx.jobs.deliver("t1", [["user", "u1"]], attempt=1, delay=0, origins={"user:u1": "req-9"})
    job = ctx.queues["bridge"].jobs[0]
    assert job.kwargs["origins"] == {"user:u1": "req-9"}
    assert job.meta["request_ids"] == ["req-9"]


def test_a_bound_block_names_its_request_and_restores_the_one_around_it():
    before = request_context.current()
    with request_context.bound("outer"):
        with request_context.bound(None):
            assert request_context.current() is None
        with pytest.raises(RuntimeError), request_context.bound("inner"):
            assert request_context.current() == "inner"
            raise RuntimeError("the block fails")
        assert request_context.current() == "outer"
    assert request_context.current() == before
