"""Scheduled reconciliation: every BRIDGE_GRAPH_INTERVAL_MINUTES, one incremental run.

Every worker process runs a ticker; a Redis key set with NX and the interval as its expiry
elects one of them per interval, which registers the run and enqueues it. Workers may come
and go, and the schedule holds without a leader or a separate scheduler process.
"""

from __future__ import annotations

import logging
import threading

import redis

from bridge.delivery.jobs import Jobs
from bridge.graph.runner import SCOPE
from bridge.graph.runs import AlreadyRunning, Runs
from bridge.graph.settings import GraphSettings

log = logging.getLogger(__name__)

TICK_SECONDS = 60.0
"""How often each worker checks whether a scheduled run is due."""


def tick(client: redis.Redis, prefix: str, graph: GraphSettings, jobs: Jobs) -> bool:
    """Enqueue the scheduled run if it is due and this process won the interval."""
    if not graph.configured or graph.interval_minutes <= 0:
        return False
    if not client.set(f"{prefix}:reconcile:due", "1", nx=True, ex=graph.interval_minutes * 60):
        return False
    try:
        Runs(client, prefix).start(
            SCOPE, mode="graph", target=None, dry_run=False, full=False, scheduled=True
        )
    except AlreadyRunning:
        log.info("scheduled reconciliation skipped: a resync is running")
        return False
    jobs.resync(mode="graph", scope=SCOPE)
    log.info("scheduled reconciliation enqueued")
    return True


class Ticker(threading.Thread):
    """Calls :func:`tick` every TICK_SECONDS until ``stop`` is set."""

    def __init__(self, client: redis.Redis, prefix: str, graph: GraphSettings, jobs: Jobs) -> None:
        super().__init__(name="reconcile-ticker", daemon=True)
        self.args = (client, prefix, graph, jobs)
        self.stop = threading.Event()

    def run(self) -> None:
        """Tick every TICK_SECONDS until stopped; a failed tick is logged and tried again."""
        while not self.stop.is_set():
            try:
                tick(*self.args)
            except redis.RedisError as exc:
                log.warning("reconcile ticker: Redis error (%s)", exc)
            self.stop.wait(TICK_SECONDS)
