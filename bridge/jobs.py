"""Enqueueing delivery work: from the dispatcher, retries, replays, syncs and probes.

Jobs are named by import path so that the web process never imports worker code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

from rq import Queue

from bridge.deliveries import Deliveries, split_item
from bridge.directory import Directory

QUEUE = "bridge"
PRIORITY_QUEUE = "bridge-deprovision"
"""Deprovisioning changes go to their own queue, which workers serve first."""

SYNC_QUEUE = "bridge-sync"
"""Resyncs and reconciliations: long jobs, kept apart so they never hold up deliveries."""

DELIVERY_QUEUES = (PRIORITY_QUEUE, QUEUE)
QUEUES = (PRIORITY_QUEUE, QUEUE, SYNC_QUEUE)
"""Queues in the order workers serve them."""

DELIVER_JOB = "workers.deliver.deliver"
RESYNC_JOB = "workers.reconcile.resync"
CONFIRM_JOB = "workers.reconcile.confirm"
PROBE_JOB = "workers.deliver.probe"
JOB_OPTIONS = {"result_ttl": 0, "failure_ttl": 7 * 24 * 3600, "job_timeout": 300}

RESYNC_TIMEOUT = 4 * 3600
"""Longest a resync job may run (a large tenant's first full run takes minutes)."""

ITEMS_PER_JOB = 100
"""Resources one delivery job carries at most."""


def queues_for(connection) -> dict[str, Queue]:
    return {name: Queue(name, connection=connection) for name in QUEUES}


def schedule(queue: Queue, job: str, delay: float, *args) -> None:
    """Enqueue ``job`` now, or after ``delay`` seconds through RQ's scheduler."""
    if delay <= 0:
        queue.enqueue(job, *args, **JOB_OPTIONS)
    else:
        queue.enqueue_in(timedelta(seconds=math.ceil(delay)), job, *args, **JOB_OPTIONS)


def enqueue_items(
    queue: Queue, target_id: str, items: list[list[str]], *, bypass_guard: bool = False
) -> int:
    """Delivery jobs for ``items`` ([kind, id] pairs), ITEMS_PER_JOB per job."""
    for start in range(0, len(items), ITEMS_PER_JOB):
        queue.enqueue(
            DELIVER_JOB,
            target_id,
            items[start : start + ITEMS_PER_JOB],
            0,
            bypass_guard,
            **JOB_OPTIONS,
        )
    return len(items)


def replay(
    deliveries: Deliveries,
    queue: Queue,
    target_id: str,
    which: str,
    items: Iterable[str] | None = None,
    *,
    reason: str | None = None,
    bypass_guard: bool = False,
) -> int:
    """Send parked deliveries (``dead`` letters or ``held`` ones) again; returns how many."""
    if reason is not None:
        wanted = {
            f"{e['kind']}:{e['id']}"
            for e in deliveries.parked(target_id, which)
            if e["reason"] == reason
        }
        items = wanted if items is None else wanted & set(items)
    taken = deliveries.take(target_id, which, items)
    return enqueue_items(
        queue, target_id, [list(split_item(t)) for t in taken], bypass_guard=bypass_guard
    )


def discard(
    deliveries: Deliveries, target_id: str, which: str, items: Iterable[str] | None = None
) -> int:
    """Drop parked deliveries without sending them (an admin rejected them)."""
    return len(deliveries.take(target_id, which, items))


def sync_target(directory: Directory, queue: Queue, target_id: str) -> int:
    """Re-examine every user and group for one target (directory → target resync).

    Deliveries converge on state, so resources already in line cost a no-op each.
    """
    total = 0
    for kind in ("user", "group"):
        start = 0
        while batch := directory.ids(kind, start, start + 999):
            total += enqueue_items(queue, target_id, [[kind, rid] for rid in batch])
            start += len(batch)
    return total


def enqueue_resync(queue: Queue, job: str = RESYNC_JOB, **kwargs) -> None:
    """A resync or confirmation job; the caller registered the run (Runs.start)."""
    queue.enqueue(job, kwargs=kwargs, job_timeout=RESYNC_TIMEOUT, result_ttl=0)
