"""RQ job entry points for delivery: thin wrappers that load state and call the relay."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import redis
from rq import get_current_job

from bridge.delivery.jobs import ITEMS_PER_JOB
from bridge.directory.stored import Kind, as_kind
from bridge.runtime.services import Services
from bridge.targets.base import TargetError
from bridge.targets.model import Target
from bridge.targets.store import TargetNotFound
from workers.context import context
from workers.lanes import lane_stopping

log = logging.getLogger(__name__)

TAKING_SECONDS = 10.0
"""How long a job keeps coming back to its lane for more before a new job takes over
(a job's timeout is 300 s, and a stopping worker waits for its running jobs)."""

LINGER_SECONDS = 0.05
"""How long a job that finds its lane empty keeps it, looking again every
LINGER_POLL_SECONDS, before it ends: changes that come 20 a second or more to a target are
delivered by one job, where each would otherwise cost a job of its own (RQ's bookkeeping
of a job costs about three webhook deliveries). Only while no job waits in the job's RQ
queue: a lingering job never keeps a worker thread from another target."""

LINGER_POLL_SECONDS = 0.005
"""How often a lingering job looks at its lane: a change that comes while it lingers waits
at most this long for it."""


def deliver(
    target_id: str,
    items: list[list[str]],
    attempt: int = 0,
    bypass_guard: bool = False,
    *,
    run: str | None = None,
    urgent: bool = False,
    pending: str | None = None,
    origins: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Bring ``target_id`` in line with the directory for each (kind, id) in ``items``, or
    for everything pending in its lane ``pending`` (see Jobs.changed).

    ``run`` names the resync waiting for these items; ``urgent`` keeps retries and
    follow-ups in the lane that takes access away; ``origins`` are the ids of the
    requests that changed the items (``kind:id`` -> request id), for the log."""
    ctx = context()
    token = _job_token()
    pairs: list[tuple[Kind, str]] = [(as_kind(kind), rid) for kind, rid in items]
    origins = dict(origins or {})
    if pending is None:
        return _deliver_items(
            ctx, target_id, pairs, token, attempt, bypass_guard, run, urgent, origins
        )
    return _take_and_deliver(ctx, target_id, pending, token, urgent, origins, pairs)


def _take_and_deliver(
    ctx: Services,
    target_id: str,
    lane: str,
    token: str,
    urgent: bool,
    origins: dict[str, str],
    first: list[tuple[Kind, str]],
) -> dict[str, Any]:
    """Deliver ``first`` and what the lane holds, then what arrived meanwhile, until a
    take finds the lane empty (see bridge/delivery/pending.py). A lane found empty is kept
    LINGER_SECONDS longer while no other job waits for the worker, so that a steady stream
    of changes is delivered by one job rather than a job per change. After TAKING_SECONDS,
    or when the worker stops, a new job takes the lane over."""
    results: dict[str, Any] = {}
    until = time.monotonic() + TAKING_SECONDS
    queue = ctx.jobs.queue(urgent).key
    linger_until = time.monotonic() + LINGER_SECONDS
    try:
        while True:
            linger = not lane_stopping() and time.monotonic() < min(linger_until, until)
            take = ctx.deliveries.take_or_linger(
                target_id,
                lane,
                token,
                origins,
                linger_in=queue if linger else None,
                version_key=ctx.targets.version_key,
            )
            taken = first + take.items
            first = []
            if not taken:
                if not take.kept:
                    return results  # the take gave up the lane: the next change queues a job
                time.sleep(LINGER_POLL_SECONDS)
                continue
            results |= _deliver_items(
                ctx,
                target_id,
                taken,
                token,
                0,
                False,
                None,
                urgent,
                origins,
                lane=lane,
                version=take.version,
            )
            origins.clear()
            linger_until = time.monotonic() + LINGER_SECONDS
            if lane_stopping() or time.monotonic() > until:
                break
    except BaseException:
        # the job fails: RQ runs it again, or gives what it took back to the lane
        # (jobs.lane_job_failed); what waits meanwhile need not wait for that
        _hand_off(ctx, target_id, token, urgent, quietly=True)
        raise
    _hand_off(ctx, target_id, token, urgent)  # a Redis error fails the job: it runs again
    return results


def _hand_off(
    ctx: Services, target_id: str, token: str, urgent: bool, *, quietly: bool = False
) -> None:
    """Queue a job to take over the lane, if this job was its taker and items wait;
    ``quietly``: this job is failing anyway, and a Redis error is only logged."""
    try:
        try:
            target = ctx.targets.cached(target_id)
        except TargetNotFound:
            target = None
        ctx.jobs.hand_off(
            ctx.deliveries,
            target_id,
            token,
            concurrency=target.concurrency if target is not None else None,
            urgent=urgent,
        )
    except redis.RedisError:
        if not quietly:
            raise
        log.warning("could not hand the lane of target %s over", target_id, exc_info=True)


def _deliver_items(
    ctx: Services,
    target_id: str,
    pairs: list[tuple[Kind, str]],
    token: str,
    attempt: int,
    bypass_guard: bool,
    run: str | None,
    urgent: bool,
    origins: dict[str, str],
    *,
    lane: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """Deliver ``pairs``, users first, ITEMS_PER_JOB at a time; when they were taken from
    ``lane``, the job is done with each batch once it is through. ``version``: the targets'
    configuration version, when it was read with what the job took."""
    try:
        target = ctx.targets.cached(target_id, version)
    except TargetNotFound:
        target = None
    if target is None or not target.enabled:
        _settle(ctx, run, target_id, [f"{k}:{i}" for k, i in pairs])
        ctx.deliveries.done_with(target_id, token, pairs)
        return {"skipped": "target deleted" if target is None else "target disabled"}
    results: dict[str, Any] = {}
    users = [p for p in pairs if p[0] == "user"]
    ordered = users + [p for p in pairs if p[0] != "user"]
    for start in range(0, len(ordered), ITEMS_PER_JOB):
        batch = ordered[start : start + ITEMS_PER_JOB]
        results |= _deliver(ctx, target, batch, token, attempt, bypass_guard, run, urgent, origins)
        if lane is not None:
            ctx.deliveries.done_with(target_id, token, batch)
    return results


def _deliver(
    ctx: Services,
    target: Target,
    items: list[tuple[Kind, str]],
    token: str,
    attempt: int,
    bypass_guard: bool,
    run: str | None,
    urgent: bool,
    origins: dict[str, str],
) -> dict[str, Any]:
    """One batch through the relay; its retries, follow-ups and probe queued."""
    outcome = ctx.relay.deliver(
        target,
        ctx.connector(target),
        items,
        token=token,
        attempt=attempt,
        bypass_guard=bypass_guard,
        origins=origins,
    )
    later: dict[tuple[int, float], list[list[str]]] = {}
    for again in outcome.retries:
        later.setdefault((again.attempt, again.delay), []).append([again.kind, again.id])
    for (next_attempt, delay), batch in later.items():
        ctx.jobs.deliver(
            target.id,
            batch,
            attempt=next_attempt,
            delay=delay,
            bypass_guard=bypass_guard,
            run=run,
            origins=origins,
            concurrency=target.concurrency,
            urgent=urgent,
        )
    if outcome.follow_ups:
        follow_ups: list[list[str]] = [list(i) for i in outcome.follow_ups]
        ctx.jobs.changed(
            ctx.deliveries, target.id, follow_ups, concurrency=target.concurrency, urgent=urgent
        )
    if outcome.breaker_opened:
        log.warning(
            "target %s quarantined after repeated failures",
            target.name,
            extra={"target": target.name},
        )
        ctx.jobs.probe(target.id, ctx.settings.breaker_probe_seconds)
    _settle(ctx, run, target.id, outcome.settled)
    return outcome.results


def probe(target_id: str) -> str:
    """Probe a quarantined target; when it answers, resume it and release held deliveries."""
    ctx = context()
    try:
        target = ctx.targets.get(target_id)
    except TargetNotFound:
        return "target deleted"
    if not ctx.deliveries.is_open(target_id):
        return "closed"
    try:
        ctx.connector(target).check()
    except TargetError as exc:
        log.info("target %s still failing: %s", target.name, exc)
        ctx.jobs.probe(target_id, ctx.settings.breaker_probe_seconds)
        return "open"
    ctx.deliveries.close(target_id)
    ctx.jobs.replay(
        ctx.deliveries, target_id, "held", reason="circuit", concurrency=target.concurrency
    )
    return "resumed"


def _job_token() -> str:
    """The running job's id: a run of the same job after its worker died takes over the
    locks the dead run left, and what it had taken from its lane (outside a worker, a
    fresh token)."""
    job = get_current_job()
    return job.id if job is not None else uuid.uuid4().hex


def _settle(ctx: Services, run: str | None, target_id: str, items: list[str]) -> None:
    if run is not None:
        ctx.runs.settle(run, target_id, items)
