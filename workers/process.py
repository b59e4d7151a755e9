"""One worker process: delivery lanes, the change-stream dispatcher (in the roles that
deliver), RQ's scheduler, the reconciliation ticker and the heartbeats, in threads, until
SIGTERM or SIGINT.

Nothing here exits because Redis went away: each thread retries with backoff, and what an
emptied Redis lacks (the consumer group, worker registrations, scheduler locks) is created
again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.utils import now, utcparse

from bridge.delivery.dispatcher import Dispatcher, DispatcherThread
from bridge.delivery.jobs import DELIVERY_QUEUES, PRIORITY_QUEUE, QUEUE, QUEUES, SYNC_QUEUE
from bridge.directory.stored import as_text
from bridge.graph.schedule import Ticker
from bridge.runtime import gil
from bridge.runtime.config import Settings
from bridge.runtime.services import Services, connect_for_blocking
from workers.lanes import Lane, LaneWorker

log = logging.getLogger(__name__)

ROLES = {"all": QUEUES, "deliver": DELIVERY_QUEUES, "sync": (SYNC_QUEUE,)}
"""What a worker serves: deliveries, resyncs, or both (``python -m workers.run [role]``).
A resync can take minutes; give it its own worker so deliveries never wait behind it."""

DISPATCHING_ROLES = frozenset({"all", "deliver"})
"""Roles whose process runs a change-stream dispatcher (the ones that deliver)."""

SYNC_LANES = 2
"""Lanes serving resyncs: one runs at a time; the other serves confirmations and counts."""

DEPROVISION_SHARE = 4
"""One lane in this many (at least one) serves only the queue that takes access away, so
deprovisions never wait for a lane busy with ordinary changes."""


def lane_queues(role: str, threads: int) -> list[str]:
    """The queue each lane of a ``role`` worker serves: one queue per lane, because RQ
    dequeues from a single queue through an intermediate list that survives a crash
    between dequeue and start (from several queues it pops, and a crash loses the job)."""
    lanes: list[str] = []
    if role in ("deliver", "all"):
        urgent = max(1, threads // DEPROVISION_SHARE)
        lanes += [PRIORITY_QUEUE] * urgent + [QUEUE] * max(1, threads - urgent)
    if role in ("sync", "all"):
        lanes += [SYNC_QUEUE] * SYNC_LANES
    return lanes


SCHEDULER_INTERVAL = 1
"""Seconds between two looks at RQ's scheduled jobs (delayed retries, probes)."""

SHUTDOWN_GRACE = 20.0
"""Seconds running jobs get to finish after SIGTERM; RQ runs what is left again."""

RECONNECT_SECONDS = 1.0
"""Wait before a background thread that lost Redis tries again."""

SCHEDULER_LOCK_RETRY_SECONDS = 2.0
"""How often a scheduler without the lock of every queue tries to take the missing ones;
RQ itself tries every ten minutes."""

SCHEDULER_STALE_SECONDS = 5.0
"""A scheduler that has not heart-beaten for this long is dead (it beats every second):
its locks are taken over instead of waiting for them to lapse (RQ's lock lives 61 s)."""

_DELETE_IF_HELD_BY = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


@dataclass
class WorkerProcess:
    """One worker process: its lanes, the dispatcher, the ticker and maintenance threads."""

    ctx: Services
    role: str

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        settings = self.ctx.settings
        self.lanes = [
            Lane(f"{self.consumer}.{queue}.{n}", queue, self._worker(queue), self.ctx.redis)
            for n, queue in enumerate(lane_queues(self.role, settings.worker_threads))
        ]
        self.dispatcher = DispatcherThread(
            Dispatcher(
                self.ctx.redis,
                self.ctx.directory.changes_key,
                lambda: list(self.ctx.targets.current().values()),
                self.consumer,
                self.ctx.jobs,
                self.ctx.deliveries,
            )
        )
        self.ticker = Ticker(self.ctx.redis, settings.key_prefix, settings.graph, self.ctx.jobs)
        # a worker that only resyncs relays nothing: one dispatcher fewer reading the stream
        dispatching = self.role in DISPATCHING_ROLES
        self.threads: list[threading.Thread] = [
            *([self.dispatcher] if dispatching else []),
            self.ticker,
            threading.Thread(target=self._schedule, name="scheduler", daemon=True),
            threading.Thread(target=self._heartbeats, name="heartbeats", daemon=True),
            threading.Thread(target=self._maintain, name="maintenance", daemon=True),
            *self.lanes,
        ]

    def _worker(self, queue: str) -> Callable[[str], LaneWorker]:
        """What makes a lane's worker: a connection pool of its own (see Lane.interrupt)."""
        s: Settings = self.ctx.settings

        def make(name: str) -> LaneWorker:
            """A lane worker named ``name``."""
            return LaneWorker(
                [self.ctx.queues[queue]],
                name=name,
                connection=connect_for_blocking(s),
                lost_after=s.job_lost_seconds,
                worker_ttl=s.worker_ttl_seconds,
                maintenance_interval=s.maintenance_seconds,
                job_monitoring_interval=s.job_heartbeat_seconds,
            )

        return make

    def run(self) -> None:
        """Start every thread and wait for a signal; then stop them in order."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        gil.hand_over_quickly()
        for thread in self.threads:
            thread.start()
        log.info("worker %s serving %s with %d lanes", self.consumer, self.role, len(self.lanes))
        self.stop.wait()
        self.shutdown()

    def shutdown(self) -> None:
        """Let running jobs finish (up to SHUTDOWN_GRACE), deregister, and leave.

        Idle lanes are not waited for: they are blocked in RQ's dequeue, and a job one of
        them takes at this instant stays in its queue's intermediate list, from which the
        other workers queue it again (see workers.lanes.STRANDED_SECONDS)."""
        self.dispatcher.stop.set()
        self.ticker.stop.set()
        for lane in self.lanes:
            lane.stop()
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while any(lane.busy for lane in self.lanes) and time.monotonic() < deadline:
            time.sleep(0.05)
        logging.getLogger("rq.worker").setLevel(logging.CRITICAL)  # idle lanes lose Redis now
        for lane in self.lanes:
            lane.leave()
        if self.dispatcher.ident is not None:  # started: this role dispatches
            self.dispatcher.join(2)

    # --- background duties ----------------------------------------------------------------
    def _heartbeats(self) -> None:
        """Every BRIDGE_JOB_HEARTBEAT_SECONDS: the running jobs are alive, so are the lanes."""
        every = max(1, self.ctx.settings.job_heartbeat_seconds)
        while not self.stop.wait(every):
            for lane in self.lanes:
                try:
                    lane.beat()
                except redis.RedisError as exc:
                    log.warning("heartbeat of %s failed: %s", lane.name, exc)

    def _maintain(self) -> None:
        """Every BRIDGE_MAINTENANCE_SECONDS: RQ's maintenance of each queue this process
        serves (lost jobs are found here), by the first lane of each queue."""
        every = max(1, self.ctx.settings.maintenance_seconds)
        firsts = {lane.queue: lane for lane in reversed(self.lanes)}
        while not self.stop.wait(every):
            for lane in firsts.values():
                worker = lane.worker
                if worker is None:
                    continue
                try:
                    worker.maintain(every)
                except redis.RedisError as exc:
                    log.warning("maintenance of %s failed: %s", lane.queue, exc)

    def _schedule(self) -> None:
        """RQ's scheduler loop (delayed retries, probes), in a thread: RQ would fork a
        process for it, which a process with threads should not do."""
        names = list(ROLES[self.role])
        while not self.stop.is_set():
            scheduler = RQScheduler(names, connection=self.ctx.redis, interval=SCHEDULER_INTERVAL)
            try:
                scheduler.register_birth()
                scheduler.acquire_locks()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
                tried = time.monotonic()
                while not self.stop.wait(SCHEDULER_INTERVAL):
                    missing = set(names) - scheduler.acquired_locks
                    if missing and time.monotonic() - tried > SCHEDULER_LOCK_RETRY_SECONDS:
                        self._free_stale_locks(missing)
                        scheduler.acquire_locks()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
                        tried = time.monotonic()
                    scheduler.heartbeat()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
                    scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
                scheduler.stop()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
            except redis.RedisError as exc:
                log.warning("scheduler: Redis error (%s); starting again", exc)
                self.stop.wait(RECONNECT_SECONDS)

    def _free_stale_locks(self, queues: set[str]) -> None:
        """Delete the scheduler locks of ``queues`` whose holder stopped heart-beating."""
        r = self.ctx.redis
        for queue in queues:
            key = RQScheduler.get_locking_key(queue)
            holder = r.get(key)
            if holder is None:
                continue
            beat = r.hget(SCHEDULER_KEY_TEMPLATE % as_text(holder), "last_heartbeat")
            if (
                beat is None
                or (now() - utcparse(as_text(beat))).total_seconds() > SCHEDULER_STALE_SECONDS
            ):
                log.warning("scheduler %s of %s is gone; taking its lock", as_text(holder), queue)
                r.eval(_DELETE_IF_HELD_BY, 1, key, holder)
