"""The bridge as production starts it: ``python -m bridge.runtime.serve`` (``scripts/serve.sh``).

The supervisor starts the web tier (granian, ``WEB_CONCURRENCY`` 2 processes ×
``BRIDGE_WEB_THREADS`` 4 threads), a delivery worker and a sync worker. Redis is the
benchmark's own ``EmbeddedRedis`` (AOF, ``appendfsync everysec``, as the supervisor's
embedded one), handed in through ``REDIS_URL`` so the benchmark can seed it and create its
token before the supervisor starts (then no first token is printed). Two settings differ
from a default start: the per-token rate limit is off (``BRIDGE_RATE_LIMIT=0``: one
token drives every connection here) and no Graph sync is scheduled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import psutil

from bench import procs
from bench.fanout_drive import Child, python_module, wait_listening
from bridge.runtime.embedded_redis import free_port
from bridge.runtime.serve import web_command

ROLES = ("web", "deliver worker", "sync worker", "supervisor")

DESCRIPTION = (
    "bridge.runtime.serve: granian WSGI 2 processes x 4 threads, a delivery and a sync worker"
)


class WebTier(Protocol):
    """What scim_load needs of a server: this, or bench.server.Gunicorn."""

    port: int

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def pids(self) -> list[int]: ...

    def profile_pid(self) -> int | None: ...


class ServedBridge:
    """``bridge.runtime.serve`` on a free port, against the Redis at ``redis_url``."""

    def __init__(self, workdir: Path, redis_url: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.env = {
            "REDIS_URL": redis_url,
            "BRIDGE_BIND": f"127.0.0.1:{self.port}",
            "BRIDGE_DATA_DIR": str(workdir / "var"),
            "BRIDGE_PUBLIC_URL": "https://scim.bench.example",
            "BRIDGE_RATE_LIMIT": "0",
            "BRIDGE_GRAPH_INTERVAL_MINUTES": "0",
            **(env or {}),
        }
        self.child = Child("serve", python_module("bridge.runtime.serve"), self.env, workdir)

    def start(self) -> None:
        self.child.start()
        wait_listening(self.child, self.port, "/readyz")

    def stop(self) -> None:
        """SIGTERM to the supervisor (it stops its children), then SIGKILL to any left."""
        left = self.processes()
        self.child.stop()
        procs.kill(left)

    def profile_pid(self) -> int | None:
        """The granian main process (its workers are its children)."""
        web = self.roles()["web"]
        return web[0].pid if web else None

    def processes(self) -> list[psutil.Process]:
        """The supervisor and everything it started."""
        return procs.tree(self.child.pid) if self.child.alive() else []

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes()]

    def roles(self) -> dict[str, list[psutil.Process]]:
        """The process tree split by role: each child of the supervisor with its descendants."""
        out: dict[str, list[psutil.Process]] = {role: [] for role in ROLES}
        if not self.child.alive():
            return out
        supervisor = psutil.Process(self.child.pid)
        out["supervisor"].append(supervisor)
        for child in supervisor.children():
            try:
                line = " ".join(child.cmdline())
            except psutil.Error:
                continue
            role = (
                "web"
                if "granian" in line
                else "deliver worker"
                if "workers.run deliver" in line
                else "sync worker"
                if "workers.run sync" in line
                else "supervisor"
            )
            out[role].extend(procs.tree(child.pid))
        return out


class ServedCeiling:
    """The ceiling app (bench.ceiling_app) under the production web tier's command."""

    def __init__(self, workdir: Path, redis_url: str) -> None:
        self.port = free_port()
        command = web_command(f"127.0.0.1:{self.port}", 2, 4, False)
        command[command.index("app:serve_app")] = "bench.ceiling_app:create_app"
        self.child = Child("ceiling", command, {"REDIS_URL": redis_url}, workdir)

    def start(self) -> None:
        self.child.start()
        wait_listening(self.child, self.port, "/healthz")

    def stop(self) -> None:
        self.child.stop()

    def processes(self) -> list[psutil.Process]:
        return procs.tree(self.child.pid) if self.child.alive() else []

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes()]

    def profile_pid(self) -> int | None:
        return self.child.pid if self.child.alive() else None
