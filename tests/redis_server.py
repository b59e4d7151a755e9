"""A private redis-server per test session, on a free port, that tests may kill and restart."""

from __future__ import annotations

from pathlib import Path

from bridge.runtime.embedded_redis import EmbeddedRedis


class RedisServer(EmbeddedRedis):
    """The embedded server without persistence; tests kill it and start it again."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        super().__init__(directory, appendonly=appendonly)
