"""One delivery attempt as the bridge reports it: its log line, its metrics and its
entry in the target's delivery log."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bridge.delivery.deliveries import now_iso
from bridge.observability import metrics
from bridge.targets.base import Change
from bridge.targets.model import Target

log = logging.getLogger("bridge.delivery.relay")


class Result(StrEnum):
    """What became of one item in a batch (the values are what jobs report)."""

    DELIVERED = "delivered"
    NOOP = "noop"
    """The target already holds what the directory holds."""
    BUSY = "busy"
    """Another worker delivers the same item: tried again shortly."""
    HELD = "held"
    """Parked for an admin (deletion guard) or for the target to recover (circuit)."""
    SHADOW = "shadow"
    """Planned and logged, not sent: the target runs in shadow mode."""
    DEAD = "dead"
    RETRY = "retry"
    DEFERRED = "deferred"
    """Not tried: the target failed earlier in the batch, so the item waits with it."""


class Logged(StrEnum):
    """A delivery log entry's outcome (and the counter it bumps, but for ``failed``)."""

    DELIVERED = "delivered"
    HELD = "held"
    SHADOW = "shadow"
    FAILED = "failed"


@dataclass(frozen=True)
class Attempt:
    """Who and what an attempt is: the target, the resource, which attempt, the job,
    when it started and the request whose change it delivers."""

    target: Target
    kind: str
    rid: str
    number: int
    job: str
    started: float
    request_id: str | None


ATTEMPT_LEVELS = {"retry": logging.WARNING, "dead": logging.ERROR}
"""Log level of a delivery attempt by outcome (others: INFO)."""


def _fields(
    target: Target,
    kind: str,
    rid: str,
    action: str | None,
    outcome: str,
    status: int | None,
    attempt: int,
    job: str,
) -> dict[str, Any]:
    """The structured fields of a delivery attempt's log line."""
    return {
        "target": target.name,
        "target_id": target.id,
        "resource": f"{kind}:{rid}",
        "action": action,
        "outcome": outcome,
        "status": status,
        "attempt": attempt,
        "job": job,
    }


def log_attempt(
    it: Attempt,
    change: Change | None,
    outcome: str,
    status: int | None,
    error: str | None,
    next_retry: float | None,
) -> None:
    """One line per delivery attempt (and its metrics): target, resource, action, HTTP
    status, attempt, next retry; with the request id of the change it delivers."""
    seconds = time.perf_counter() - it.started
    metrics.observe_delivery(it.target.name, outcome, seconds)
    level = ATTEMPT_LEVELS.get(outcome, logging.INFO)
    if not log.isEnabledFor(level):
        return  # the line's fields are not built for nothing
    action = change.action if change else None
    fields = _fields(it.target, it.kind, it.rid, action, outcome, status, it.number, it.job)
    fields["latency_ms"] = round(seconds * 1000, 2)
    if next_retry is not None:
        fields["next_retry_seconds"] = round(next_retry, 3)
    if error:
        fields["error"] = error
    if it.request_id:
        fields["request_id"] = it.request_id
    retry = f", next retry in {next_retry:.1f} s" if next_retry is not None else ""
    log.log(
        level,
        "delivery %s: %s %s %s:%s -> %s (attempt %d%s)%s",
        outcome,
        it.target.name,
        action or "-",
        it.kind,
        it.rid,
        status if status is not None else "-",
        it.number,
        retry,
        f": {error}" if error else "",
        extra=fields,
    )


def log_entry(
    it: Attempt,
    change: Change | None,
    outcome: Logged,
    status: int | None,
    attempts: int,
    error: str | None,
) -> dict[str, Any]:
    """The delivery log's entry for one attempt."""
    return {
        "at": now_iso(),
        "kind": it.kind,
        "id": it.rid,
        "action": change.action if change else None,
        "outcome": str(outcome),
        "status": status,
        "attempts": attempts,
        "latency_ms": round((time.perf_counter() - it.started) * 1000, 2),
        "error": error,
    }
