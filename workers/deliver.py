"""RQ job entry points for delivery: thin wrappers that load state and call the relay."""

from __future__ import annotations

import logging

from bridge import jobs
from bridge.targets.base import TargetError
from bridge.targets.store import TargetNotFound
from workers.context import context

log = logging.getLogger(__name__)


def deliver(
    target_id: str, items: list[list[str]], attempt: int = 0, bypass_guard: bool = False
) -> dict:
    """Bring ``target_id`` in line with the directory for each (kind, id) in ``items``."""
    ctx = context()
    try:
        target = ctx.targets.cached(target_id)
    except TargetNotFound:
        return {"skipped": "target deleted"}
    if not target.enabled:
        return {"skipped": "target disabled"}
    pairs = [(kind, rid) for kind, rid in items]
    outcome = ctx.relay.deliver(
        target, ctx.connector(target), pairs, attempt=attempt, bypass_guard=bypass_guard
    )
    queue = ctx.queues[jobs.QUEUE]
    for kind, rid, next_attempt, delay in outcome.retries:
        jobs.schedule(queue, jobs.DELIVER_JOB, delay, target_id, [[kind, rid]], next_attempt)
    if outcome.breaker_opened:
        log.warning("target %s quarantined after repeated failures", target.name)
        jobs.schedule(queue, jobs.PROBE_JOB, ctx.settings.breaker_probe_seconds, target_id)
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
        jobs.schedule(
            ctx.queues[jobs.QUEUE], jobs.PROBE_JOB, ctx.settings.breaker_probe_seconds, target_id
        )
        return "open"
    ctx.deliveries.close(target_id)
    jobs.replay(ctx.deliveries, ctx.queues[jobs.QUEUE], target_id, "held", reason="circuit")
    return "resumed"
