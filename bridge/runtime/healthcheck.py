"""The container health check: ``python -m bridge.runtime.healthcheck [web|worker]``.

One image runs the web tier and the workers, so the Dockerfile's ``HEALTHCHECK`` names no
role: it is read from the container's main process (``workers.run`` in its command line
means a worker). Exit status 0 is healthy, 1 unhealthy, with one line saying why.

- **web**: ``/readyz`` on ``BRIDGE_BIND``'s port answers 200 (the process serves, and
  reaches Redis).
- **worker**: a lane of a worker process of this host (``<hostname>-<pid>.…``, the names
  :class:`workers.process.WorkerProcess` gives) has heart-beaten in Redis within
  :data:`STALE_AFTER_BEATS` heartbeat intervals: the process runs and reaches Redis.

Kubernetes probes the web tier over HTTP instead (``/healthz``, ``/readyz``); see
deploy/kubernetes/.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

import redis
from rq import Worker

from bridge.runtime.config import Settings
from bridge.runtime.serve import DEFAULT_BIND

STALE_AFTER_BEATS = 3
"""Heartbeat intervals (BRIDGE_JOB_HEARTBEAT_SECONDS) after which a lane counts as stuck."""

TIMEOUT_SECONDS = 3.0
"""Longest the check waits for /readyz or Redis."""


def check_web(bind: str) -> str:
    """'' when /readyz answers 200 on ``bind``'s port, else why not."""
    port = bind.rpartition(":")[2]
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            return "" if answer.status == 200 else f"{url} answered {answer.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def check_worker(settings: Settings, hostname: str) -> str:
    """'' when a lane of this host's worker beat recently, else why not."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=TIMEOUT_SECONDS)
    try:
        lanes = [w for w in Worker.all(connection=client) if w.name.startswith(f"{hostname}-")]
    except redis.RedisError as exc:
        return f"cannot reach Redis (REDIS_URL): {exc}"
    finally:
        client.close()
    if not lanes:
        return f"no worker lane of {hostname} is registered"
    beats = [w.last_heartbeat.timestamp() for w in lanes if w.last_heartbeat]
    age = time.time() - max(beats, default=0.0)
    if age > STALE_AFTER_BEATS * max(1, settings.job_heartbeat_seconds):
        return f"the worker lanes of {hostname} last beat {age:.0f} s ago"
    return ""


def role_of_main_process(cmdline: Path = Path("/proc/1/cmdline")) -> str:
    """``worker`` when the container's main process runs ``workers.run``, else ``web``."""
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return "web"
    return "worker" if b"workers.run" in args else "web"


def main(argv: list[str] | None = None) -> int:
    """Check this container's role; print why when it is unhealthy."""
    args = sys.argv[1:] if argv is None else argv
    role = args[0] if args else role_of_main_process()
    settings = Settings.from_env()
    if role == "web":
        problem = check_web(os.environ.get("BRIDGE_BIND", DEFAULT_BIND))
    elif role == "worker":
        problem = check_worker(settings, socket.gethostname())
    else:
        problem = f"usage: python -m bridge.runtime.healthcheck [web|worker], not {role!r}"
    print(problem or f"{role}: healthy")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
