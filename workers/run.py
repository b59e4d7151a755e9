"""Start a worker: ``python -m workers.run``.

Each worker process runs the change-stream dispatcher and the reconciliation ticker in
threads, and an RQ worker that executes jobs in-process (RQ's SimpleWorker: no fork per
job, so connection pools, OAuth2 and Graph tokens and parsed target configurations are
reused across jobs). Run as many as needed, on as many machines as needed, all pointing at
the same REDIS_URL.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from rq import SimpleWorker

from bridge.events import Dispatcher, DispatcherThread
from bridge.jobs import DELIVERY_QUEUES, QUEUES, SYNC_QUEUE
from bridge.schedule import Ticker
from workers.context import context

ROLES = {"all": QUEUES, "deliver": DELIVERY_QUEUES, "sync": (SYNC_QUEUE,)}
"""What a worker serves: deliveries, resyncs, or both (``python -m workers.run [role]``).
A resync can take minutes; give it its own worker so deliveries never wait behind it."""


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else "all"
    if role not in ROLES:
        raise SystemExit(f"usage: python -m workers.run [{'|'.join(ROLES)}]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ctx = context()
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    dispatcher = Dispatcher(
        ctx.redis, ctx.settings.key_prefix, lambda: list(ctx.targets.current().values()), consumer
    )
    thread = DispatcherThread(dispatcher)
    thread.start()
    ticker = Ticker(ctx.redis, ctx.settings.key_prefix, ctx.settings.graph, ctx.queues[SYNC_QUEUE])
    ticker.start()
    try:
        worker = SimpleWorker([ctx.queues[name] for name in ROLES[role]], connection=ctx.redis)
        worker.work(with_scheduler=True, logging_level="WARNING")
    finally:
        thread.stop.set()
        ticker.stop.set()
        thread.join(5)


if __name__ == "__main__":
    main()
