"""RQ job entry points for delivery: thin wrappers that load state and call the relay."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from rq import get_current_job

from bridge.delivery.jobs import ITEMS_PER_JOB
from bridge.directory.stored import Kind, as_kind
from bridge.runtime.services import Services
from bridge.targets.base import TargetError
from bridge.targets.model import Target
from bridge.targets.store import TargetNotFound
from workers.context import context

log = logging.getLogger(__name__)


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
    if pending is not None:
        pairs += ctx.deliveries.take_pending(target_id, pending, token, origins)
    try:
        target = ctx.targets.cached(target_id)
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
        if pending is not None:
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
