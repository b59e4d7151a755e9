"""/readyz fails only without Redis; it reports workers, dispatchers, schedulers and
whether the change stream drains."""

from __future__ import annotations

import time
from dataclasses import replace

from rq import Worker
from rq.scheduler import RQScheduler

from app import create_app
from bridge.delivery.dispatcher import Dispatcher, DispatcherThread
from bridge.delivery.jobs import QUEUES
from tests.factories import entra_user
from workers.context import context


def ready(app) -> tuple[int, dict]:
    response = app.test_client().get("/readyz")
    return response.status_code, response.json


def test_ready_without_any_worker_and_says_so(app):
    status, body = ready(app)
    assert status == 200
    assert body["redis"] == "ok"
    assert body["workers"]["alive"] is False
    assert body["dispatchers"]["alive"] is False
    assert body["scheduler"]["alive"] is False
    assert body["changes"]["state"] == "idle"


def test_not_ready_without_redis(settings):
    down = create_app(
        replace(settings, redis_url="redis://127.0.0.1:9/0", redis_timeout_seconds=0.5)
    )
    status, body = ready(down)
    assert status == 503
    assert body["status"] == "redis unavailable"


def test_changes_nobody_dispatches_are_reported_stalled_without_failing(app, scim):
    scim.post("/Users", json=entra_user())
    status, body = ready(app)
    assert status == 200
    assert body["changes"]["state"] == "stalled"
    assert body["changes"]["draining"] is False
    assert body["changes"]["length"] == 1


def test_a_running_dispatcher_is_alive_and_drains_the_stream(app, scim):
    ctx = context()
    thread = DispatcherThread(
        Dispatcher(
            ctx.redis,
            ctx.directory.changes_key,
            ctx.targets.all,
            "ready-test",
            ctx.jobs,
            ctx.deliveries,
        )
    )
    thread.start()
    try:
        scim.post("/Users", json=entra_user())
        deadline = time.monotonic() + 10
        body: dict = {}
        while time.monotonic() < deadline:
            _, body = ready(app)
            if body["dispatchers"]["alive"] and body["changes"]["state"] == "idle":
                break
            time.sleep(0.1)
        assert body["dispatchers"] == {"alive": True, "count": 1}
        assert body["changes"]["state"] == "idle"
    finally:
        thread.stop.set()
        thread.join(5)


def test_registered_worker_lanes_are_alive(app):
    ctx = context()
    worker = Worker([ctx.queues["bridge"]], connection=ctx.redis, name="ready-lane")
    worker.register_birth()
    try:
        _, body = ready(app)
        assert body["workers"]["alive"] is True
        assert body["workers"]["lanes"] == 1
        assert body["workers"]["queues"] == {"bridge": 1}
    finally:
        worker.register_death()


def test_a_heart_beating_scheduler_holding_every_queue_is_alive(app):
    scheduler = RQScheduler(list(QUEUES), connection=context().redis)
    scheduler.register_birth()
    scheduler.acquire_locks()
    try:
        _, body = ready(app)
        assert body["scheduler"]["alive"] is True
        assert set(body["scheduler"]["queues"]) == set(QUEUES)
    finally:
        scheduler.release_locks()


def test_a_dispatcher_that_stopped_beating_is_not_alive(app, redis_client):
    redis_client.zadd("bridge:dispatchers", {"gone-1234": time.time() - 60})
    _, body = ready(app)
    assert body["dispatchers"] == {"alive": False, "count": 0}


def test_a_dispatcher_that_stops_is_no_longer_counted(app):
    ctx = context()
    thread = DispatcherThread(
        Dispatcher(
            ctx.redis,
            ctx.directory.changes_key,
            ctx.targets.all,
            "leaving",
            ctx.jobs,
            ctx.deliveries,
        )
    )
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not ready(app)[1]["dispatchers"]["alive"]:
        time.sleep(0.05)
    thread.stop.set()
    thread.join(5)
    assert ready(app)[1]["dispatchers"] == {"alive": False, "count": 0}
