"""Enqueueing work for the workers: deliveries, probes and resyncs.

Every delivery job names one target and some resources. It runs in the target's *lane*:
an RQ rate limit (``RateLimit``) that lets at most the target's ``concurrency`` jobs be
queued or running at once, so a slow or dead target holds only its own lane while the
workers' other threads serve every other target. Taking access away has a lane of its own
per target (and a queue that workers serve first), so it never waits behind a target's
backlog of ordinary changes.

Every job carries an RQ ``Retry``: a job whose worker died (its heartbeat lapsed) or that
failed because Redis went away is run again. Deliveries converge on the directory's
current state, so running one twice is harmless.

Jobs are named by import path so that the web process never imports worker code.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Callback, Queue, Retry
from rq.job import Job
from rq.rate_limit import RateLimit, RateLimitRegistry

from bridge.delivery.deliveries import Deliveries
from bridge.delivery.pending import split_item
from bridge.directory.records import Directory
from bridge.observability import request_context

QUEUE = "bridge"
PRIORITY_QUEUE = "bridge-deprovision"
"""Changes that take access away go to their own queue, which workers serve first."""

SYNC_QUEUE = "bridge-sync"
"""Resyncs and reconciliations: long jobs, kept apart so they never hold up deliveries."""

DELIVERY_QUEUES = (PRIORITY_QUEUE, QUEUE)
QUEUES = (PRIORITY_QUEUE, QUEUE, SYNC_QUEUE)
"""Queues in the order workers serve them."""

DELIVER_JOB = "workers.deliver.deliver"
RESYNC_JOB = "workers.reconcile.resync"
CONFIRM_JOB = "workers.reconcile.confirm"
SETTLE_JOB = "workers.reconcile.settle"
PROBE_JOB = "workers.deliver.probe"
LANE_JOB_FAILED = "bridge.delivery.jobs.lane_job_failed"

JOB_OPTIONS: dict[str, Any] = {"result_ttl": 0, "failure_ttl": 7 * 24 * 3600, "job_timeout": 300}
"""Delivery jobs leave no result behind; failed ones stay inspectable for a week."""

RERUNS = Retry(max=5, interval=[0, 5, 15, 30, 60])
"""How often a job is run again after its worker died or it raised (Redis away, a bug),
and after how long: the first time at once, without waiting for RQ's scheduler (whose
lock a dead worker may still hold). Each item's own delivery retries are the relay's
business, not this."""

RESYNC_TIMEOUT = 4 * 3600
"""Longest a resync job may run (a large tenant's first full run takes minutes)."""

ITEMS_PER_JOB = 100
"""Resources one delivery job carries at most."""


def lane_of(urgent: bool) -> str:
    """The name of a target's lane for a change: ``deprovision`` or ``changes``."""
    return "deprovision" if urgent else "changes"


def queue_of(urgent: bool) -> str:
    """The name of the RQ queue a change's jobs go to: the one workers serve first when
    it takes access away."""
    return PRIORITY_QUEUE if urgent else QUEUE


def queues_for(connection: Redis) -> dict[str, Queue]:
    """The RQ queues the bridge uses, by name."""
    return {name: Queue(name, connection=connection) for name in QUEUES}


def lane(prefix: str, target_id: str, urgent: bool) -> str:
    """The rate-limit key of a target's lane (RQ keeps it as ``rq:rl:<key>``)."""
    return f"{prefix}:{target_id}:{lane_of(urgent)}"


def waiting_in_lanes(client: Redis, prefix: str) -> dict[str, int]:
    """Delivery jobs waiting for a place in their target's lane, by the queue they go to
    (both queues are always present)."""
    mine = [r for r in RateLimitRegistry.all(client) if r.key.startswith(f"{prefix}:")]
    pipe = client.pipeline(transaction=False)
    for registry in mine:
        pipe.zcard(registry.rate_limited_key)
    counts = dict.fromkeys(DELIVERY_QUEUES, 0)
    for registry, count in zip(mine, pipe.execute(), strict=True):
        counts[queue_of(registry.key.endswith(f":{lane_of(True)}"))] += int(count)
    return counts


@dataclass(frozen=True)
class Jobs:
    """Enqueues the workers' jobs on ``queues``; ``prefix`` keeps lanes apart per deployment."""

    queues: dict[str, Queue]
    prefix: str
    default_concurrency: int

    def waiting_in_lanes(self, client: Redis) -> dict[str, int]:
        """Delivery jobs waiting for a place in their target's lane, by the queue they go to."""
        return waiting_in_lanes(client, self.prefix)

    def queue(self, urgent: bool) -> Queue:
        """The RQ queue a change's jobs go to (see queue_of)."""
        return self.queues[queue_of(urgent)]

    def deliver(
        self,
        target_id: str,
        items: list[list[str]],
        *,
        concurrency: int | None = None,
        urgent: bool = False,
        attempt: int = 0,
        delay: float = 0.0,
        bypass_guard: bool = False,
        run: str | None = None,
        origins: dict[str, str] | None = None,
    ) -> int:
        """Delivery jobs for ``items`` ([kind, id] pairs), ITEMS_PER_JOB per job, in the
        target's lane; after ``delay`` seconds when it is positive. Returns how many items.

        ``origins`` maps ``kind:id`` to the id of the request that changed it, which each
        job carries (kwarg ``origins``) onto its delivery log lines."""
        queue = self.queue(urgent)
        limit = RateLimit(
            lane(self.prefix, target_id, urgent), concurrency or self.default_concurrency
        )
        if origins is None and (current := request_context.current()):
            # queued by an admin request or a resync run: its id goes with every item
            origins = {f"{k}:{i}": current for k, i in items}
        for start in range(0, len(items), ITEMS_PER_JOB):
            batch = items[start : start + ITEMS_PER_JOB]
            args = (target_id, batch, attempt, bypass_guard)
            options = {**JOB_OPTIONS, "rate_limit": limit, "retry": RERUNS}
            kwargs: dict[str, Any] = {"run": run, "urgent": urgent}
            known = origins or {}
            mine = {f"{k}:{i}": known[f"{k}:{i}"] for k, i in batch if f"{k}:{i}" in known}
            if mine:
                kwargs["origins"] = mine
                options["meta"] = {"request_ids": sorted(set(mine.values()))}
            if delay > 0:
                wait = timedelta(seconds=math.ceil(delay))
                queue.enqueue_in(wait, DELIVER_JOB, args=args, kwargs=kwargs, **options)
            else:
                queue.enqueue(DELIVER_JOB, args=args, kwargs=kwargs, **options)
        return len(items)

    def changed(
        self,
        deliveries: Deliveries,
        target_id: str,
        items: list[list[str]],
        *,
        concurrency: int | None = None,
        urgent: bool = False,
        origins: dict[str, str] | None = None,
    ) -> None:
        """Resources that changed: pending in the target's lane, for the next job to take
        (one is queued when none is yet), so a busy or dead target's backlog is one entry
        per resource, not one job per change. ``origins`` (``kind:id`` -> request id)
        wait beside them for the job that takes them."""
        lane_name = lane_of(urgent)
        prefix = Job.redis_job_namespace_prefix
        job_id = str(uuid.uuid4())
        if deliveries.pend(target_id, lane_name, items, prefix, job_id, origins):
            self._take_lane(target_id, job_id, concurrency=concurrency, urgent=urgent)

    def hand_off(
        self,
        deliveries: Deliveries,
        target_id: str,
        job_id: str,
        *,
        concurrency: int | None = None,
        urgent: bool = False,
        give_back: bool = False,
    ) -> bool:
        """The lane's taker ``job_id`` stops before the lane is empty: a new job takes
        over what waits (see bridge/delivery/pending.py). True when one was queued.
        ``give_back``: ``job_id`` will not run again; what it had taken waits again."""
        new_id = str(uuid.uuid4())
        prefix = Job.redis_job_namespace_prefix
        if not deliveries.hand_off(
            target_id, lane_of(urgent), job_id, new_id, prefix, give_back=give_back
        ):
            return False
        self._take_lane(target_id, new_id, concurrency=concurrency, urgent=urgent)
        return True

    def _take_lane(
        self, target_id: str, job_id: str, *, concurrency: int | None, urgent: bool
    ) -> None:
        """Queue the job ``job_id`` that takes what is pending in the target's lane."""
        queue = self.queue(urgent)
        limit = RateLimit(
            lane(self.prefix, target_id, urgent), concurrency or self.default_concurrency
        )
        kwargs = {"urgent": urgent, "pending": lane_of(urgent)}
        options = {
            **JOB_OPTIONS,
            "rate_limit": limit,
            "retry": RERUNS,
            "on_failure": Callback(LANE_JOB_FAILED),
            "meta": {"lane": {"prefix": self.prefix, "concurrency": limit.concurrency}},
        }
        queue.enqueue(DELIVER_JOB, args=(target_id, []), kwargs=kwargs, job_id=job_id, **options)

    def probe(self, target_id: str, delay: float) -> None:
        """Probe a quarantined target after ``delay`` seconds (outside its lane: a probe is
        one quick request, and must not wait behind the deliveries it will release)."""
        queue = self.queues[QUEUE]
        wait = timedelta(seconds=max(1, math.ceil(delay)))
        queue.enqueue_in(wait, PROBE_JOB, target_id, retry=RERUNS, **JOB_OPTIONS)

    def resync(self, job: str = RESYNC_JOB, *, delay: float = 0.0, **kwargs: Any) -> None:
        """A resync job (or its confirmation, or a count of what it waits for), after
        ``delay`` seconds when positive; the caller registered the run (Runs.start)."""
        queue = self.queues[SYNC_QUEUE]
        options = {"job_timeout": RESYNC_TIMEOUT, "result_ttl": 0, "retry": RERUNS}
        if delay > 0:
            wait = timedelta(seconds=math.ceil(delay))
            queue.enqueue_in(wait, job, kwargs=kwargs, **options)
        else:
            queue.enqueue(job, kwargs=kwargs, **options)

    def replay(
        self,
        deliveries: Deliveries,
        target_id: str,
        which: str,
        items: Iterable[str] | None = None,
        *,
        concurrency: int | None = None,
        reason: str | None = None,
        bypass_guard: bool = False,
        urgent: bool = False,
    ) -> int:
        """Send parked deliveries (``dead`` letters or ``held`` ones) again, users before
        groups; ``urgent`` for deprovisions (the deletion guard holds only those)."""
        if reason is not None:
            wanted = {
                f"{e['kind']}:{e['id']}"
                for e in deliveries.parked(target_id, which)
                if e["reason"] == reason
            }
            items = wanted if items is None else wanted & set(items)
        taken = [list(split_item(t)) for t in deliveries.take(target_id, which, items)]
        users = [i for i in taken if i[0] == "user"]
        groups = [i for i in taken if i[0] == "group"]
        return self.deliver(
            target_id,
            users + groups,
            concurrency=concurrency,
            bypass_guard=bypass_guard,
            urgent=urgent,
        )

    def sync_target(
        self,
        directory: Directory,
        target_id: str,
        *,
        concurrency: int | None = None,
        run: str | None = None,
        expect: Any = None,
    ) -> int:
        """Re-examine every user, then every group, for one target (directory → target).

        Deliveries converge on state, so resources already in line cost a no-op each.
        ``expect(target_id, items)`` is told of each batch before it is enqueued (a resync
        counts what remains to be done)."""
        total = 0
        for kind in ("user", "group"):
            start = 0
            while batch := directory.ids(kind, start, start + 999):
                items = [[kind, rid] for rid in batch]
                if expect is not None:
                    expect(target_id, items)
                total += self.deliver(target_id, items, concurrency=concurrency, run=run)
                start += len(batch)
        return total


def discard(
    deliveries: Deliveries, target_id: str, which: str, items: Iterable[str] | None = None
) -> int:
    """Drop parked deliveries without sending them (an admin rejected them)."""
    return len(deliveries.take(target_id, which, items))


def lane_job_failed(job: Job, connection: Redis, *exc_info: Any) -> None:
    """RQ's failure callback of a job that takes from a lane (it raised, or its worker
    died; RQ calls it wherever it finds that out, so it needs no worker). When RQ will
    run the job again, that run takes what it had taken, and what waits; when it will
    not, what it had taken waits in the lane again and a new job takes the lane over."""
    lane_of_job = job.meta.get("lane")
    if job.should_retry or not isinstance(lane_of_job, dict):
        return
    prefix, concurrency = lane_of_job["prefix"], lane_of_job.get("concurrency")
    jobs = Jobs(queues_for(connection), prefix, concurrency or 1)
    jobs.hand_off(
        Deliveries(connection, prefix),
        job.args[0],
        job.id,
        concurrency=concurrency,
        urgent=bool(job.kwargs.get("urgent")),
        give_back=True,
    )
