"""Run the real fan-out pipeline in-process: dispatcher, then RQ SimpleWorkers, until idle."""

from __future__ import annotations

from rq import SimpleWorker

from bridge.events import Dispatcher
from bridge.jobs import QUEUES
from workers.context import context

MAX_ROUNDS = 50
"""Dispatch/work rounds before giving up: retries re-enqueue, so a few rounds are normal."""


class Pipeline:
    """Drains the change stream and runs every queued job, as a worker process would."""

    def __init__(self) -> None:
        self.ctx = context()
        self.dispatcher = Dispatcher(
            self.ctx.redis, self.ctx.settings.key_prefix, self.ctx.targets.all, "tests"
        )
        self.dispatcher.setup()

    def run(self) -> None:
        for _ in range(MAX_ROUNDS):
            self.dispatcher.drain()
            if not any(self.ctx.queues[name].count for name in QUEUES):
                return
            worker = SimpleWorker(
                [self.ctx.queues[name] for name in QUEUES], connection=self.ctx.redis
            )
            worker.work(burst=True, logging_level="WARNING")
        raise AssertionError("the pipeline did not become idle")
