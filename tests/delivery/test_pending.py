"""A target lane's pending changes and its taker: the job queued, or running, that takes
them. A running taker comes back for what arrives while it delivers, so a steady stream
of changes costs one job, not one job per change."""

from __future__ import annotations

import pytest
from rq.job import Job, JobStatus

from bridge.delivery.jobs import QUEUE, lane_job_failed

LANE = "changes"


@pytest.fixture
def target_id(ctx) -> str:
    return ctx.targets.create(
        {
            "name": "hook",
            "kind": "webhook",
            "url": "http://127.0.0.1:9/hook",
            "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }
    )["id"]


def change(ctx, target_id: str, rid: str) -> None:
    ctx.jobs.changed(ctx.deliveries, target_id, [["user", rid]])


def queued(ctx) -> list[Job]:
    return ctx.queues[QUEUE].get_jobs()


def running_taker(ctx, target_id: str, rid: str = "u1") -> Job:
    """A change queued a job, which started and took it: the lane's running taker."""
    change(ctx, target_id, rid)
    (job,) = queued(ctx)
    ctx.queues[QUEUE].remove(job)
    job.set_status(JobStatus.STARTED)
    assert ctx.deliveries.take_pending(target_id, LANE, job.id) == [("user", rid)]
    return job


def test_the_first_change_queues_a_job_for_the_lane(ctx, target_id):
    change(ctx, target_id, "u1")
    assert [job.kwargs["pending"] for job in queued(ctx)] == [LANE]


def test_changes_before_the_job_starts_wait_for_it(ctx, target_id):
    change(ctx, target_id, "u1")
    change(ctx, target_id, "u2")
    assert len(queued(ctx)) == 1
    assert ctx.deliveries.pending_items(target_id, LANE) == [("user", "u1"), ("user", "u2")]


def test_a_change_while_the_taker_delivers_waits_for_it_instead_of_a_new_job(ctx, target_id):
    job = running_taker(ctx, target_id)
    change(ctx, target_id, "u2")
    assert queued(ctx) == []
    ctx.deliveries.done_with(target_id, job.id, [("user", "u1")])
    assert ctx.deliveries.take_pending(target_id, LANE, job.id) == [("user", "u2")]


def test_a_taker_that_finds_the_lane_empty_gives_it_up(ctx, target_id):
    job = running_taker(ctx, target_id)
    ctx.deliveries.done_with(target_id, job.id, [("user", "u1")])
    assert ctx.deliveries.take_pending(target_id, LANE, job.id) == []
    change(ctx, target_id, "u2")
    assert len(queued(ctx)) == 1, "the next change queues a job of its own"


def test_a_lingering_taker_keeps_the_empty_lane_while_no_job_waits_in_its_queue(ctx, target_id):
    job = running_taker(ctx, target_id)
    ctx.deliveries.done_with(target_id, job.id, [("user", "u1")])
    queue = ctx.queues[QUEUE].key
    assert ctx.deliveries.take_or_linger(target_id, LANE, job.id, linger_in=queue)[:2] == ([], True)
    change(ctx, target_id, "u2")
    assert queued(ctx) == [], "the change waits for the lingering taker"
    taken = ctx.deliveries.take_or_linger(target_id, LANE, job.id, linger_in=queue)
    assert taken[:2] == ([("user", "u2")], False)


def test_a_taker_does_not_linger_when_a_job_waits_in_its_queue(ctx, target_id):
    job = running_taker(ctx, target_id)
    ctx.deliveries.done_with(target_id, job.id, [("user", "u1")])
    ctx.queues[QUEUE].enqueue("builtins.print", "another target's delivery")
    queue = ctx.queues[QUEUE].key
    assert ctx.deliveries.take_or_linger(target_id, LANE, job.id, linger_in=queue)[:2] == (
        [],
        False,
    )
    change(ctx, target_id, "u2")
    assert len(queued(ctx)) == 2, "the lane is given up: the next change queues a job"


def test_a_lingering_taker_that_stops_lingering_gives_the_lane_up(ctx, target_id):
    job = running_taker(ctx, target_id)
    ctx.deliveries.done_with(target_id, job.id, [("user", "u1")])
    queue = ctx.queues[QUEUE].key
    assert ctx.deliveries.take_or_linger(target_id, LANE, job.id, linger_in=queue)[1]
    assert ctx.deliveries.take_or_linger(target_id, LANE, job.id)[:2] == ([], False)
    change(ctx, target_id, "u2")
    assert len(queued(ctx)) == 1


def test_a_busy_taker_with_changes_waiting_gets_a_job_beside_it(ctx, target_id):
    """A taker that has not come back while changes wait is in a slow delivery: the lane
    runs a second job (up to the target's concurrency) rather than waiting behind it."""
    running_taker(ctx, target_id)
    change(ctx, target_id, "u2")
    change(ctx, target_id, "u3")
    assert len(queued(ctx)) == 1


def test_a_taker_whose_job_ended_is_replaced_by_the_next_change(ctx, target_id):
    job = running_taker(ctx, target_id)
    job.set_status(JobStatus.FAILED)
    change(ctx, target_id, "u2")
    assert len(queued(ctx)) == 1


def test_a_taker_that_stops_early_hands_waiting_changes_to_a_new_job(ctx, target_id):
    job = running_taker(ctx, target_id)
    change(ctx, target_id, "u2")
    assert ctx.jobs.hand_off(ctx.deliveries, target_id, job.id)
    (successor,) = queued(ctx)
    ctx.queues[QUEUE].remove(successor)
    successor.set_status(JobStatus.STARTED)
    assert ctx.deliveries.take_pending(target_id, LANE, successor.id) == [("user", "u2")]


def test_a_taker_that_stops_with_nothing_waiting_queues_nothing(ctx, target_id):
    job = running_taker(ctx, target_id)
    assert not ctx.jobs.hand_off(ctx.deliveries, target_id, job.id)
    change(ctx, target_id, "u2")
    assert len(queued(ctx)) == 1, "the lane has no taker left: the next change queues one"


def test_a_job_that_is_not_the_taker_hands_nothing_over(ctx, target_id):
    running_taker(ctx, target_id)
    change(ctx, target_id, "u2")
    assert not ctx.jobs.hand_off(ctx.deliveries, target_id, "another-job")
    assert queued(ctx) == []


def test_a_taker_that_will_not_run_again_gives_back_what_it_took_to_a_new_job(ctx, target_id):
    """Its worker died (or it raised) and RQ has no rerun left: RQ's failure callback puts
    what it had taken back in the lane, with what waited for it, for a new job."""
    job = running_taker(ctx, target_id)
    change(ctx, target_id, "u2")
    job.retries_left = 0
    job.save()
    lane_job_failed(job, ctx.redis)
    (successor,) = queued(ctx)
    taken = ctx.deliveries.take_pending(target_id, LANE, successor.id)
    assert sorted(taken) == [("user", "u1"), ("user", "u2")]


def test_a_taker_that_runs_again_keeps_what_it_took_for_its_next_run(ctx, target_id):
    job = running_taker(ctx, target_id)
    lane_job_failed(job, ctx.redis)  # it has reruns left
    assert queued(ctx) == []
    assert ctx.deliveries.take_pending(target_id, LANE, job.id) == [("user", "u1")]


def test_a_take_is_bounded_and_the_rest_waits_for_the_next(ctx, target_id):
    for i in range(5):
        change(ctx, target_id, f"u{i}")
    (job,) = queued(ctx)
    first = ctx.deliveries.take_pending(target_id, LANE, job.id, limit=3)
    assert len(first) == 3
    ctx.deliveries.done_with(target_id, job.id, first)
    rest = ctx.deliveries.take_pending(target_id, LANE, job.id, limit=3)
    assert sorted(first + rest) == [("user", f"u{i}") for i in range(5)]


def test_a_take_reads_the_targets_configuration_version_when_asked(ctx, target_id):
    job = running_taker(ctx, target_id)
    change(ctx, target_id, "u2")
    version_key = ctx.targets.version_key
    taken = ctx.deliveries.take_or_linger(target_id, LANE, job.id, version_key=version_key)
    assert sorted(taken.items) == [("user", "u1"), ("user", "u2")]
    assert taken.version == ctx.targets.version() != ""
    assert ctx.deliveries.take_or_linger(target_id, LANE, job.id).version is None
