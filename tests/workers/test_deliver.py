"""The delivery job of a target lane: it delivers what the lane holds, then comes back for
what changed meanwhile, and hands the lane to a new job when it stops early."""

from __future__ import annotations

import pytest

from bridge.delivery.jobs import QUEUE
from tests.factories import entra_user, target_config
from workers import deliver
from workers.context import context


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


def test_a_job_that_stops_taking_hands_what_waits_to_a_new_job(
    scim, pipeline, receiver, hook, monkeypatch
):
    monkeypatch.setattr(deliver, "TAKING_SECONDS", 0.0)
    write_during_first_delivery(scim, pipeline, receiver, "second@contoso.com")
    create_user(scim, "first@contoso.com")
    pipeline.run()
    assert created(receiver) == ["first@contoso.com", "second@contoso.com"]
