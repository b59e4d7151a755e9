"""One worker process: delivery lanes, the change-stream dispatcher, RQ's scheduler, the
reconciliation ticker and the heartbeats, in threads, until SIGTERM or SIGINT.

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
from dataclasses import dataclass

import redis
from rq.scheduler import RQScheduler

from bridge.config import Settings
from bridge.events import Dispatcher, DispatcherThread
from bridge.extension import connect_for_blocking
from bridge.jobs import DELIVERY_QUEUES, QUEUES, SYNC_QUEUE
from bridge.schedule import Ticker
from workers.context import Context
from workers.lanes import Lane, LaneWorker

log = logging.getLogger(__name__)

ROLES = {"all": QUEUES, "deliver": DELIVERY_QUEUES, "sync": (SYNC_QUEUE,)}
"""What a worker serves: deliveries, resyncs, or both (``python -m workers.run [role]``).
A resync can take minutes; give it its own worker so deliveries never wait behind it."""

SYNC_LANES = 2
"""Lanes of a ``sync`` worker: one resync runs at a time; the other serves confirmations."""

SCHEDULER_INTERVAL = 1
"""Seconds between two looks at RQ's scheduled jobs (delayed retries, probes)."""

SHUTDOWN_GRACE = 20.0
"""Seconds running jobs get to finish after SIGTERM; RQ runs what is left again."""

RECONNECT_SECONDS = 1.0
"""Wait before a background thread that lost Redis tries again."""


@dataclass
class WorkerProcess:
    ctx: Context
    role: str

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        settings = self.ctx.settings
        count = SYNC_LANES if self.role == "sync" else max(1, settings.worker_threads)
        self.lanes = [
            Lane(f"{self.consumer}.{self.role}.{n}", self._worker, self.ctx.redis)
            for n in range(count)
        ]
        self.dispatcher = DispatcherThread(
            Dispatcher(
                self.ctx.redis,
                settings.key_prefix,
                lambda: list(self.ctx.targets.current().values()),
                self.consumer,
                self.ctx.jobs,
            )
        )
        self.ticker = Ticker(self.ctx.redis, settings.key_prefix, settings.graph, self.ctx.jobs)
        self.threads: list[threading.Thread] = [
            self.dispatcher,
            self.ticker,
            threading.Thread(target=self._schedule, name="scheduler", daemon=True),
            threading.Thread(target=self._heartbeats, name="heartbeats", daemon=True),
            *self.lanes,
        ]

    def _worker(self, name: str) -> LaneWorker:
        s: Settings = self.ctx.settings
        return LaneWorker(
            [self.ctx.queues[q] for q in ROLES[self.role]],
            name=name,
            connection=connect_for_blocking(s),
            lost_after=s.job_lost_seconds,
            worker_ttl=s.worker_ttl_seconds,
            maintenance_interval=s.maintenance_seconds,
            job_monitoring_interval=s.job_heartbeat_seconds,
        )

    def run(self) -> None:
        """Start every thread and wait for a signal; then stop them in order."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        for thread in self.threads:
            thread.start()
        log.info("worker %s serving %s with %d lanes", self.consumer, self.role, len(self.lanes))
        self.stop.wait()
        self.shutdown()

    def shutdown(self) -> None:
        """Let running jobs finish (up to SHUTDOWN_GRACE), then leave."""
        self.dispatcher.stop.set()
        self.ticker.stop.set()
        for lane in self.lanes:
            lane.stop()
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while any(lane.busy for lane in self.lanes) and time.monotonic() < deadline:
            time.sleep(0.05)
        for lane in self.lanes:
            lane.interrupt()
        for lane in self.lanes:
            lane.join(max(0.1, deadline - time.monotonic()))
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

    def _schedule(self) -> None:
        """RQ's scheduler loop (delayed retries, probes), in a thread: RQ would fork a
        process for it, which a process with threads should not do."""
        names = list(ROLES[self.role])
        while not self.stop.is_set():
            scheduler = RQScheduler(names, connection=self.ctx.redis, interval=SCHEDULER_INTERVAL)
            try:
                scheduler.register_birth()
                scheduler.acquire_locks()
                while not self.stop.wait(SCHEDULER_INTERVAL):
                    if scheduler.should_reacquire_locks:
                        scheduler.acquire_locks()
                    scheduler.heartbeat()
                    scheduler.enqueue_scheduled_jobs()
                scheduler.stop()
            except redis.RedisError as exc:
                log.warning("scheduler: Redis error (%s); starting again", exc)
                self.stop.wait(RECONNECT_SECONDS)
