"""RQ job entry points for delivery: thin wrappers that load state and call the relay."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from bridge.events import DELIVER_JOB, JOB_OPTIONS, QUEUE
from bridge.targets.base import TargetError
from bridge.targets.store import TargetNotFound
from workers.context import Context, context

log = logging.getLogger(__name__)

PROBE_JOB = "workers.deliver.probe"


def deliver(target_id: str, items: list[list[str]], attempt: int = 0, bypass_guard: bool = False) -> dict:
    """Bring ``target_id`` in line with the directory for each (kind, id) in ``items``."""
    ctx = context()
    try:
        target = ctx.targets.get(target_id)
    except TargetNotFound:
        return {"skipped": "target deleted"}
    if not target.enabled:
        return {"skipped": "target disabled"}
    outcome = ctx.relay.deliver(
        target, ctx.connector(target), [tuple(i) for i in items], attempt=attempt, bypass_guard=bypass_guard
    )
    for kind, rid, next_attempt, delay in outcome.retries:
        schedule(ctx, DELIVER_JOB, delay, target_id, [[kind, rid]], next_attempt)
    if outcome.breaker_opened:
        log.warning("target %s quarantined after repeated failures", target.name)
        schedule(ctx, PROBE_JOB, ctx.settings.breaker_probe_seconds, target_id)
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
        schedule(ctx, PROBE_JOB, ctx.settings.breaker_probe_seconds, target_id)
        return "open"
    ctx.deliveries.close(target_id)
    replay(ctx, target_id, "held", reason="circuit")
    return "resumed"


def replay(ctx: Context, target_id: str, which: str, items=None, *, reason: str | None = None, bypass_guard=False) -> int:
    """Enqueue parked deliveries again (dead letters or held ones); returns how many."""
    parked = ctx.deliveries.parked(target_id, which)
    if reason is not None:
        wanted = {f"{e['kind']}:{e['id']}" for e in parked if e["reason"] == reason}
        items = wanted if items is None else wanted & set(items)
    taken = ctx.deliveries.take(target_id, which, items)
    for start in range(0, len(taken), 100):
        chunk = [t.split(":", 1) for t in taken[start : start + 100]]
        ctx.queues[QUEUE].enqueue(DELIVER_JOB, target_id, chunk, 0, bypass_guard, **JOB_OPTIONS)
    return len(taken)


def schedule(ctx: Context, job: str, delay: float, *args) -> None:
    """Enqueue ``job`` now, or after ``delay`` seconds through RQ's scheduler."""
    queue = ctx.queues[QUEUE]
    if delay <= 0:
        queue.enqueue(job, *args, **JOB_OPTIONS)
    else:
        queue.enqueue_in(timedelta(seconds=math.ceil(delay)), job, *args, **JOB_OPTIONS)
