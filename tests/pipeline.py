"""Run the real fan-out pipeline in-process: dispatcher, then RQ SimpleWorkers, until idle.

Jobs that RQ's scheduler holds (delayed retries, a resync counting what it waits for) are
released when they fall due within SCHEDULED_WAIT seconds, as a worker's scheduler would.
"""

from __future__ import annotations

import time

from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler

from bridge.delivery.dispatcher import Dispatcher
from bridge.delivery.jobs import QUEUES
from workers.context import context

MAX_ROUNDS = 50
"""Dispatch/work rounds before giving up: retries re-enqueue, so a few rounds are normal."""

SCHEDULED_WAIT = 5.0
"""Scheduled jobs due within this many seconds are waited for; later ones are left."""


class Pipeline:
    """Drains the change stream and runs every queued job, as a worker process would."""

    def __init__(self) -> None:
        self.ctx = context()
        self.dispatcher = Dispatcher(
            self.ctx.redis,
            self.ctx.directory.changes_key,
            self.ctx.targets.all,
            "tests",
            self.ctx.jobs,
            self.ctx.deliveries,
        )
        self.dispatcher.setup()

    def run(self) -> None:
        for _ in range(MAX_ROUNDS):
            self.dispatcher.drain()
            if not any(self.ctx.queues[name].count for name in QUEUES):
                if not self._release_due():
                    return
                continue
            worker = SimpleWorker(
                [self.ctx.queues[name] for name in QUEUES], connection=self.ctx.redis
            )
            worker.work(burst=True, logging_level="WARNING")
        raise AssertionError("the pipeline did not become idle")

    def _release_due(self) -> bool:
        """Wait for the soonest scheduled job if it is due within SCHEDULED_WAIT, then let
        RQ's scheduler enqueue every job that is due; False when none is that close."""
        soonest = None
        for name in QUEUES:
            registry = ScheduledJobRegistry(queue=self.ctx.queues[name])
            first = self.ctx.redis.zrange(registry.key, 0, 0, withscores=True)
            if first and (soonest is None or first[0][1] < soonest):
                soonest = first[0][1]
        if soonest is None or soonest - time.time() > SCHEDULED_WAIT:
            return False
        time.sleep(max(0.0, soonest - time.time()) + 0.01)
        scheduler = RQScheduler(list(QUEUES), connection=self.ctx.redis)
        scheduler.acquire_locks()
        try:
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
        return True
