"""What the console's overview shows: the admin status document, plus what an operator
reads first (targets by health, the last Entra push, the last reconciliation, job ages)."""

from __future__ import annotations

import time
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.utils import utcparse

from bridge.admin.overview import overview
from bridge.graph.runner import SCOPE
from bridge.observability import health
from bridge.observability.audit_log import AuditLog
from bridge.runtime.services import Services

HEALTH_CLASSES = ("healthy", "retrying", "quarantined", "disabled", "shadow")
"""How the overview sorts targets, each in exactly one class."""

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

PUSH_LOOKBACK = 500
"""SCIM requests looked through for the last write (Entra's push)."""


def health_of(target: dict[str, Any]) -> str:
    """One target's health class: disabled and shadow first (they send nothing), then
    quarantined (breaker open), retrying (failures in a row), else healthy."""
    if not target.get("enabled", True):
        return "disabled"
    if target.get("shadow"):
        return "shadow"
    if target.get("breaker") == "open":
        return "quarantined"
    if int(target.get("failures") or 0) > 0:
        return "retrying"
    return "healthy"


def oldest_job_ages(client: redis.Redis, queues: dict[str, Queue]) -> dict[str, float]:
    """Age in seconds of the job at the head of each queue (0 when empty): two round trips."""
    pipe = client.pipeline(transaction=False)
    for queue in queues.values():
        pipe.lindex(queue.key, 0)
    heads = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for head in heads:
        pipe.hget(Job.redis_job_namespace_prefix + (head or b"").decode(), "enqueued_at")
    now = time.time()
    ages = {}
    for name, head, enqueued in zip(queues, heads, pipe.execute(), strict=True):
        age = 0.0
        if head and enqueued:
            age = max(0.0, now - utcparse(enqueued.decode()).timestamp())
        ages[name] = round(age, 1)
    return ages


def last_push(audit: AuditLog) -> dict[str, Any] | None:
    """The latest SCIM write among the latest PUSH_LOOKBACK requests (Entra pushes writes)."""
    if not audit.enabled:
        return None
    audit.flush()
    for entry in audit.read(limit=PUSH_LOOKBACK):
        if entry.get("method") in WRITE_METHODS:
            return entry
    return None


def last_reconciliation(state: Services) -> dict[str, Any] | None:
    """The latest run that read Entra (mode ``graph`` or ``both``), running or finished."""
    current = state.runs.get(SCOPE)
    if current and current.get("mode") in ("graph", "both"):
        return current
    for run in state.runs.history(SCOPE, limit=50):
        if run.get("mode") in ("graph", "both"):
            return run
    return None


def snapshot(state: Services, audit: AuditLog) -> dict[str, Any]:
    """Everything the overview shows, read now."""
    data = overview(state)
    by_health: dict[str, int] = dict.fromkeys(HEALTH_CLASSES, 0)
    for target in data["targets"]:
        target["health"] = health_of(target)
        by_health[target["health"]] += 1
    data["by_health"] = by_health
    data["dead"] = sum(int(t.get("dead") or 0) for t in data["targets"])
    data["held"] = sum(int(t.get("held") or 0) for t in data["targets"])
    data["oldest"] = oldest_job_ages(state.redis, state.queues)
    data["alive"] = health.workers_alive(state.redis)
    data["last_push"] = last_push(audit)
    data["last_reconciliation"] = last_reconciliation(state)
    return data
