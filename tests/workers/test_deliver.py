"""The delivery job of a target lane: it delivers what the lane holds, then comes back for
what changed meanwhile, and hands the lane to a new job when it stops early."""

from __future__ import annotations

import threading
import time

import pytest
from rq.registry import StartedJobRegistry

from bridge.delivery.jobs import QUEUE
from tests.factories import entra_user, target_config
from workers import deliver
from workers.context import context
from workers.lanes import LaneWorker


@pytest.fixture
def hook(app, receiver):
    return context().targets.create(
        target_config(name="hook", url=receiver.url + "/events", signing_secret=receiver.secret)
    )


def create_user(scim, user_name: str) -> None:
    response = scim.post("/Users", json=entra_user(userName=user_name))
    assert response.status_code == 201


def created(receiver) -> list[str]:
    return sorted(e["data"]["resource"]["userName"] for e in receiver.of("user.created"))


def write_during_first_delivery(scim, pipeline, receiver, user_name: str) -> list[int]:
    """While the first event is being answered, create ``user_name`` and dispatch it; the
    delivery jobs queued at that moment are returned."""
    seen: list[int] = []

    def on_event(event: dict) -> None:
        if seen:
            return
        create_user(scim, user_name)
        pipeline.dispatcher.drain()
        seen.append(context().queues[QUEUE].count)

    receiver.on_event = on_event
    return seen


def test_a_change_made_while_the_job_delivers_is_delivered_by_the_same_job(
    scim, pipeline, receiver, hook
):
    queued = write_during_first_delivery(scim, pipeline, receiver, "second@contoso.com")
    create_user(scim, "first@contoso.com")
    pipeline.run()
    assert queued == [0], "the running job takes the change: no job is queued for it"
    assert created(receiver) == ["first@contoso.com", "second@contoso.com"]


def test_a_change_made_just_after_the_lane_emptied_is_delivered_by_the_lingering_job(
    scim, pipeline, receiver, hook, monkeypatch
):
    monkeypatch.setattr(deliver, "LINGER_SECONDS", 1.0)
    queued: list[int] = []

    def change_while_lingering() -> None:
        create_user(scim, "second@contoso.com")
        pipeline.dispatcher.drain()
        queued.append(context().queues[QUEUE].count)

    def on_event(event: dict) -> None:
        if not queued and not timers:
            # after this delivery is answered, while the job lingers on its empty lane
            timers.append(threading.Timer(0.3, change_while_lingering))
            timers[0].start()

    timers: list[threading.Timer] = []
    receiver.on_event = on_event
    create_user(scim, "first@contoso.com")
    pipeline.run()
    timers[0].join()
    assert queued == [0], "the lingering job takes the change: no job is queued for it"
    assert created(receiver) == ["first@contoso.com", "second@contoso.com"]


def test_a_job_that_stops_taking_hands_what_waits_to_a_new_job(
    scim, pipeline, receiver, hook, monkeypatch
):
    monkeypatch.setattr(deliver, "TAKING_SECONDS", 0.0)
    write_during_first_delivery(scim, pipeline, receiver, "second@contoso.com")
    create_user(scim, "first@contoso.com")
    pipeline.run()
    assert created(receiver) == ["first@contoso.com", "second@contoso.com"]


def test_a_lost_taker_without_reruns_left_gives_what_it_took_to_a_new_job(app, hook):
    """Its worker died mid-delivery and RQ has no rerun left: when RQ's maintenance finds
    the job abandoned, the job's failure callback puts what it had taken back in the lane,
    with the change that waited for it, and queues a job to take them."""
    ctx = context()
    queue = ctx.queues[QUEUE]
    ctx.jobs.changed(ctx.deliveries, hook["id"], [["user", "u1"]])
    (job,) = queue.get_jobs()
    queue.remove(job)
    job.retries_left = 0  # its last run
    job.save()
    worker = LaneWorker([queue], connection=ctx.redis, lost_after=1)
    worker.prepare_execution(job)  # as RQ starts a job: its execution lives 1 s
    worker.prepare_job_execution(job)  # without a heartbeat
    assert ctx.deliveries.take_pending(hook["id"], "changes", job.id) == [("user", "u1")]
    ctx.jobs.changed(ctx.deliveries, hook["id"], [["user", "u2"]])
    assert queue.get_jobs() == [], "the change waits for the running taker"
    time.sleep(1.5)  # the worker is gone: no heartbeat
    StartedJobRegistry(queue=queue).cleanup()
    (successor,) = queue.get_jobs()
    taken = ctx.deliveries.take_pending(hook["id"], "changes", successor.id)
    assert sorted(taken) == [("user", "u1"), ("user", "u2")]
