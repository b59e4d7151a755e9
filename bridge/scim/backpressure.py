"""Backpressure: SCIM writes wait while the relay is far behind.

When the change stream (``{prefix}:changes``) or the delivery queues (RQ's
``rq:queue:bridge`` and ``rq:queue:bridge-deprovision`` lists) hold more than
``BRIDGE_MAX_BACKLOG`` entries, writes are answered 429 with ``Retry-After``, which Entra
honours; reads still work. The backlog is read at most once per CHECK_INTERVAL_SECONDS
per process, by whichever request finds it stale, so writes pay no round trip for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis
from rq import Queue

from bridge.delivery.jobs import DELIVERY_QUEUES

CHECK_INTERVAL_SECONDS = 1.0
"""How old the backlog a process knows may be before a request reads it again."""

RETRY_AFTER_SECONDS = 15
"""What ``Retry-After`` tells a client that met the backlog: long enough for workers to
deliver a few thousand changes, short enough that Entra does not fall behind."""


class Backpressure:
    """Knows, to within CHECK_INTERVAL_SECONDS, whether the relay's backlog is too large."""

    def __init__(
        self,
        client: redis.Redis,
        changes_key: str,
        max_backlog: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = client
        self.changes_key = changes_key
        self.queue_keys = [Queue.redis_queue_namespace_prefix + name for name in DELIVERY_QUEUES]
        self.max_backlog = max_backlog
        self.clock = clock
        self.backlog = 0
        self._checked: float | None = None
        self._lock = threading.Lock()

    def overloaded(self) -> bool:
        """Whether writes should wait; reads the backlog when what is known is stale."""
        if self.max_backlog <= 0:
            return False
        now = self.clock()
        stale = self._checked is None or now - self._checked >= CHECK_INTERVAL_SECONDS
        if stale and self._lock.acquire(blocking=False):  # others use the last value
            try:
                self._checked = now
                self.backlog = self._read()
            finally:
                self._lock.release()
        return self.backlog > self.max_backlog

    def _read(self) -> int:
        """The larger of the stream's length and the delivery queues' total length."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xlen(self.changes_key)
            for key in self.queue_keys:
                pipe.llen(key)
            stream, *queues = pipe.execute()
        except redis.RedisError:
            return 0  # the write itself will find Redis unreachable and answer 503
        return max(int(stream), sum(int(q) for q in queues))
