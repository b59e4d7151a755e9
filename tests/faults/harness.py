"""The real bridge processes for fault tests, each started and stopped by its PID.

A :class:`Stack` is one bridge on 127.0.0.1: Redis with AOF (``EmbeddedRedis``), the web
tier (as ``bridge/runtime/serve.py`` runs it) and workers (``python -m workers.run``),
each in a session of its own, with its output in a log file of the stack's folder. The
knobs in :data:`FAST_ENV` make recovery take seconds while keeping the real mechanisms.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from bridge.directory.tokens import ADMIN_TOKEN_PREFIX, TokenStore
from bridge.runtime import serve
from bridge.runtime.embedded_redis import EmbeddedRedis, free_port
from bridge.runtime.processes import die_with_parent
from bridge.runtime.services import ADMIN_TOKENS_HASH
from bridge.targets.secrets import SecretBox

REPO = Path(__file__).resolve().parents[2]
"""Where the bridge's processes run (app.py, workers/)."""

KEY_PREFIX = "faults"

FAST_ENV = {
    "BRIDGE_KEY_PREFIX": KEY_PREFIX,
    "BRIDGE_RETRY_BASE_SECONDS": "0.5",
    "BRIDGE_RETRY_MAX_ATTEMPTS": "4",
    "BRIDGE_BREAKER_THRESHOLD": "1000",
    "BRIDGE_BREAKER_PROBE_SECONDS": "2",
    "BRIDGE_WORKER_THREADS": "4",
    "BRIDGE_TARGET_CONCURRENCY": "2",
    "BRIDGE_JOB_HEARTBEAT_SECONDS": "1",
    "BRIDGE_JOB_LOST_SECONDS": "4",
    "BRIDGE_MAINTENANCE_SECONDS": "1",
    "BRIDGE_WORKER_TTL_SECONDS": "20",
    "BRIDGE_REDIS_TIMEOUT_SECONDS": "2",
    "BRIDGE_TARGET_CONNECT_TIMEOUT": "1",
    "BRIDGE_TARGET_READ_TIMEOUT": "2",
    "BRIDGE_GRAPH_INTERVAL_MINUTES": "0",
    "WEB_CONCURRENCY": "2",
    "BRIDGE_WEB_THREADS": "4",
}
"""Settings of every stack: short retries, heartbeats and timeouts, no breaker trips.
Eight web threads in all, as serve.sh's defaults (4 x 2) give."""

START_TIMEOUT = 30.0
"""Seconds a stack may take to answer /readyz and list its workers."""

STOP_GRACE = 10.0
"""Seconds a process gets after SIGTERM before its session is killed."""

LOG_TAIL = 4000
"""Characters of each process's log attached to a failure message."""


def web_command(bind: str, env: Mapping[str, str]) -> list[str]:
    """The web tier's command line, as ``bridge/runtime/serve.py`` runs it."""
    return serve.web_command(
        bind, int(env.get("WEB_CONCURRENCY", "2")), int(env.get("BRIDGE_WEB_THREADS", "4")), False
    )


def worker_command(role: str) -> list[str]:
    """A worker of ``role`` (``deliver`` or ``sync``)."""
    return [sys.executable, "-m", "workers.run", role]


@dataclass
class Process:
    """One child process with its output in ``log``; stopped by its PID (and its session)."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the process's own session (the web server's children too)."""
        self.terminate()
        self.finish(time.monotonic() + STOP_GRACE)

    def terminate(self) -> None:
        if self.alive():
            self.popen.terminate()

    def finish(self, deadline: float) -> None:
        """Wait for the exit until ``deadline``, then kill what is left of the session."""
        try:
            self.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # its session: start_new_session made pgid == pid
        except ProcessLookupError:
            pass
        if self.popen.poll() is None:
            self.popen.wait(10)

    def tail(self, chars: int = LOG_TAIL) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-chars:]


def start_process(name: str, args: list[str], env: Mapping[str, str], folder: Path) -> Process:
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            args,
            cwd=REPO,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    return Process(name, popen, log)


@dataclass
class Stack:
    """One bridge: Redis (AOF), web tier, delivery and sync workers, all on 127.0.0.1."""

    folder: Path
    overrides: dict[str, str] = field(default_factory=dict)
    redis: EmbeddedRedis = field(init=False)
    env: dict[str, str] = field(init=False)
    web: Process | None = None
    workers: list[Process] = field(default_factory=list)
    scim_token: str = ""
    admin_token: str = ""
    _count: int = 0

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.redis = EmbeddedRedis(self.folder / "redis", port=free_port(), appendonly=True)
        self.port = free_port()
        self.env = _base_env()
        self.env.update(
            {
                "REDIS_URL": self.redis.url,
                "BRIDGE_SECRET_KEYS": SecretBox.generate_key(),
                "BRIDGE_PUBLIC_URL": self.url,
                **FAST_ENV,
                **self.overrides,
            }
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def prefix(self) -> str:
        return self.env["BRIDGE_KEY_PREFIX"]

    # --- life cycle -----------------------------------------------------------------------
    def start(self) -> Stack:
        self.redis.start()
        self.create_tokens()
        self.web = self._spawn("web", web_command(f"127.0.0.1:{self.port}", self.env))
        self.start_workers()
        self.wait_ready()
        return self

    def start_workers(self) -> list[Process]:
        started = [self._spawn("deliver", worker_command("deliver"))]
        started.append(self._spawn("sync", worker_command("sync")))
        self.workers.extend(started)
        return started

    def stop(self) -> None:
        """Stop every process this stack started, together, and Redis last."""
        processes = [*self.workers, *([self.web] if self.web else [])]
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for process in processes:
            process.finish(deadline)
        self.redis.stop()

    def kill_workers(self) -> list[Process]:
        """SIGKILL every running worker process; returns them."""
        killed = [w for w in self.workers if w.alive()]
        for worker in killed:
            worker.kill()
        return killed

    def _spawn(self, role: str, args: list[str]) -> Process:
        self._count += 1
        return start_process(f"{self._count:02d}-{role}", args, self.env, self.folder)

    # --- Redis ----------------------------------------------------------------------------
    def client(self) -> redis.Redis:
        return redis.Redis(port=self.redis.port, socket_timeout=5)

    def create_tokens(self) -> None:
        """A SCIM token and an admin token, written straight into the stack's Redis."""
        client = self.client()
        try:
            self.scim_token = TokenStore(client, self.prefix).create("faults")[1]
            admin = TokenStore(
                client, self.prefix, ADMIN_TOKENS_HASH, token_prefix=ADMIN_TOKEN_PREFIX
            )
            self.admin_token = admin.create("faults")[1]
        finally:
            client.close()

    # --- readiness ------------------------------------------------------------------------
    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until /readyz answers and /admin/status lists a worker per running process."""
        deadline = time.monotonic() + timeout
        wanted = len([w for w in self.workers if w.alive()])
        last = "no answer"
        with httpx.Client(base_url=self.url, timeout=2) as http:
            while time.monotonic() < deadline:
                dead = [p.name for p in self.processes() if not p.alive()]
                if dead:
                    raise AssertionError(f"bridge process(es) exited: {dead}\n{self.logs()}")
                try:
                    ready = http.get("/readyz")
                    status = http.get("/admin/status", headers=self.admin_headers())
                    if ready.status_code == 200 and status.status_code == 200:
                        listed = len(status.json()["workers"])
                        if listed >= wanted:
                            return
                        last = f"{listed} of {wanted} workers listed"
                    else:
                        last = f"readyz {ready.status_code}, status {status.status_code}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        raise AssertionError(f"the bridge did not get ready: {last}\n{self.logs()}")

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def processes(self) -> list[Process]:
        return [*([self.web] if self.web else []), *self.workers]

    def logs(self) -> str:
        """The tail of every process's log, and of Redis's, for failure messages."""
        parts = [
            f"--- {p.name} (pid {p.pid}, {_state(p)}) ---\n{p.tail()}" for p in self.processes()
        ]
        redis_log = self.redis.data_dir / "redis.log"
        if redis_log.exists():
            parts.append(f"--- redis ---\n{redis_log.read_text(errors='replace')[-LOG_TAIL:]}")
        return "\n".join(parts)


def _state(process: Process) -> str:
    code = process.popen.poll()
    return "running" if code is None else f"exited {code}"


def _base_env() -> dict[str, str]:
    """This process's environment without any bridge setting or Redis URL."""
    return {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("BRIDGE_") or k in ("REDIS_URL", "WEB_CONCURRENCY"))
    }
