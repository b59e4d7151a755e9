"""Start an RQ worker on the bridge's queues: ``python -m workers.run``.

Run as many as needed, on as many machines as needed, all pointing at the same REDIS_URL.
"""

from __future__ import annotations

import logging

import redis
from rq import Queue, Worker

from bridge.config import Settings

QUEUES = ("bridge-deprovision", "bridge")
"""Queues in priority order: deprovisioning first, so access is removed fastest."""


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    connection = redis.Redis.from_url(settings.redis_url)
    queues = [Queue(name, connection=connection) for name in QUEUES]
    Worker(queues, connection=connection).work(with_scheduler=True)


if __name__ == "__main__":
    main()
