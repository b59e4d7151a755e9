"""Per-token rate limiting: a token bucket per bearer token, in each web process's memory.

The buckets live in the process, not in Redis, so limiting adds no round trip to a
request. Each gunicorn worker keeps its own buckets; a client spread over ``n`` processes
may go up to ``n`` times the rate, which is what a per-process guard is for: no single
token can monopolise a process.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

MAX_TRACKED_TOKENS = 10_000
"""Buckets kept at most; only verified tokens get one, so this is never reached in practice.
Past it the buckets are dropped and every token starts again with a full burst."""


class RateLimiter:
    """Token buckets: ``rate`` requests per second, up to ``burst`` at once, per key."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when the rate is 0: limiting is off and :meth:`wait` never waits."""
        return self.rate > 0

    def wait(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0 if allowed, else seconds until it is."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1:
                if len(self._buckets) >= MAX_TRACKED_TOKENS and key not in self._buckets:
                    self._buckets.clear()
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value (RFC 9110 §10.2.3): whole seconds, at least one."""
    return str(max(1, math.ceil(seconds)))
