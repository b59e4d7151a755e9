"""Run the whole bridge on one machine: ``python -m bridge.runtime.serve`` (``scripts/serve.sh``).

Starts an embedded Redis (when REDIS_URL is unset), the web tier (granian serving the
Flask app), a delivery worker and a sync worker; creates a first SCIM token if none
exists; prints the SCIM URL and token once ``/readyz`` answers. It then keeps them up: a
process that exits is started again (the embedded Redis on its own data, so nothing is
lost), and one that keeps failing as it starts stops the bridge with exit status 1 rather
than looping. Ctrl-C (or SIGTERM) stops everything cleanly.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import redis

from bridge.directory.tokens import TokenStore
from bridge.runtime.config import Settings
from bridge.runtime.embedded_redis import EmbeddedRedis
from bridge.runtime.processes import die_with_parent
from bridge.targets.secrets import SecretBox

DEFAULT_BIND = "127.0.0.1:8000"
EMBEDDED_REDIS_PORT = 6390
"""The embedded Redis's port when free, so var/bridge.env stays valid across restarts."""

EMBEDDED_MARK = "BRIDGE_EMBEDDED_REDIS"
"""Written to var/bridge.env beside REDIS_URL: a REDIS_URL that came from there (a shell
that loaded the file for the CLI) means "the embedded one", not "an external Redis"."""

READY_TIMEOUT = 60.0
"""Seconds the web tier may take to answer /readyz at start."""

SHUTDOWN_GRACE = 20.0
"""Seconds children get to finish after SIGTERM before they are killed."""

RESTART_WINDOW = 60.0
"""A process that exits more than MAX_RESTARTS times within this many seconds is failing
to start, not crashing once: the bridge stops instead of restarting it forever."""

MAX_RESTARTS = 5


def web_command(bind: str, workers: int, threads: int, access_log: bool) -> list[str]:
    """The web tier: granian serving ``app:create_app()`` over WSGI.

    Request headers are parsed outside Python with a time limit, so clients that send
    slowly hold no application thread; bodies are capped while they are read (see
    bridge.web.body)."""
    host, _, port = bind.rpartition(":")
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "app:create_app",
        "--host", host or "127.0.0.1", "--port", port,
        "--workers", str(workers), "--blocking-threads", str(threads),
        "--http", "1", "--http1-header-read-timeout", "10000",
        "--respawn-failed-workers", "--workers-kill-timeout", str(int(SHUTDOWN_GRACE)),
        "--log-level", "warning", "--access-log" if access_log else "--no-access-log",
    ]  # fmt: skip


@dataclass
class Child:
    """One supervised process: how to start it, and when it last had to be restarted."""

    name: str
    start: Callable[[], subprocess.Popen[bytes] | None]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def run(self) -> None:
        """Start the child process."""
        self.process = self.start()

    def exited(self) -> bool:
        """Whether the child process has exited."""
        return self.process is not None and self.process.poll() is not None

    def failing(self) -> bool:
        """Record a restart; True when there were too many lately."""
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW] + [now]
        return len(self.restarts) > MAX_RESTARTS


def main() -> int:
    """Run the bridge's processes (Redis if none is configured, web, workers) until stopped."""
    env = dict(os.environ)
    data_dir = Path(env.get("BRIDGE_DATA_DIR", Settings.data_dir))
    if _came_from_env_file(env, data_dir):
        del env["REDIS_URL"]
    bind = env.get("BRIDGE_BIND", DEFAULT_BIND)
    if not _can_bind(bind):
        print(f"{bind} is in use: stop what holds it, or set BRIDGE_BIND", file=sys.stderr)
        return 1
    embedded = None
    if "REDIS_URL" not in env:
        port = _int(env, "BRIDGE_REDIS_PORT") or _free_or_none(EMBEDDED_REDIS_PORT)
        embedded = EmbeddedRedis(data_dir / "redis", port=port)
        env["REDIS_URL"] = embedded.url
        env[EMBEDDED_MARK] = "1"
    if not env.get("BRIDGE_SECRET_KEYS"):
        env["BRIDGE_SECRET_KEYS"] = _local_secret_key(data_dir)
    if not env.get("BRIDGE_CONSOLE_SECRET_KEY"):
        env["BRIDGE_CONSOLE_SECRET_KEY"] = _local_secret_key(data_dir, "console.key")
    env.setdefault("BRIDGE_LOG_FORMAT", "text")  # a person reads a local run's output
    env["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir(data_dir))
    settings = Settings.from_env(env)
    children = _children(env, bind, embedded)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        """Signal handler: the supervising loop stops, then the children are stopped."""
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for child in children:
            child.run()
        token = _first_token(settings)
        env_file = _write_env_file(data_dir, env)
        if not _wait_ready(bind, children):
            print("the web tier did not start; see its output above", file=sys.stderr)
            return 1
        _announce(settings, bind, token, embedded, env_file)
        return _supervise(children, lambda: stopping, env["PROMETHEUS_MULTIPROC_DIR"])
    finally:
        _stop_all(children)


def _children(env: dict[str, str], bind: str, embedded: EmbeddedRedis | None) -> list[Child]:
    """Redis first (when embedded), then the web tier and the two workers."""
    web = web_command(
        bind,
        int(env.get("WEB_CONCURRENCY", "2")),
        int(env.get("BRIDGE_WEB_THREADS", "4")),
        bool(env.get("BRIDGE_ACCESS_LOG")),
    )
    children = []
    if embedded is not None:
        children.append(Child("redis", lambda: _start_redis(embedded)))
    children.append(Child("web", lambda: _spawn(web, env)))
    for role in ("deliver", "sync"):
        command = [sys.executable, "-m", "workers.run", role]
        children.append(Child(f"{role} worker", functools.partial(_spawn, command, env)))
    return children


def _supervise(children: list[Child], stopping: Callable[[], bool], metrics_dir: str = "") -> int:
    """Restart what exits until told to stop; 1 when a process keeps failing."""
    while not stopping():
        for child in children:
            if not child.exited():
                continue
            code = child.process.returncode if child.process else None
            if child.process is not None and metrics_dir:
                _mark_dead(child.process.pid, metrics_dir)
            if child.failing():
                print(f"the {child.name} keeps exiting (status {code}); stopping", file=sys.stderr)
                return 1
            print(f"the {child.name} exited (status {code}); starting it again", file=sys.stderr)
            child.run()
        time.sleep(0.5)
    return 0


def _start_redis(embedded: EmbeddedRedis) -> subprocess.Popen[bytes]:
    embedded.start()
    assert embedded.process is not None
    return embedded.process


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # a session of its own: a terminal's Ctrl-C reaches this supervisor, which stops them
    return subprocess.Popen(args, env=env, start_new_session=True, preexec_fn=die_with_parent())


def _wait_ready(bind: str, children: list[Child]) -> bool:
    """Whether /readyz answers before READY_TIMEOUT and before the web tier gives up."""
    host, _, port = bind.rpartition(":")
    url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}/readyz"
    web = next(c for c in children if c.name == "web")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not web.exited():
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _first_token(settings: Settings) -> str | None:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        store = TokenStore(client, settings.key_prefix)
        if store.any():
            return None
        return store.create("entra")[1]
    finally:
        client.close()


def _announce(
    settings: Settings, bind: str, token: str | None, embedded: EmbeddedRedis | None, env_file: Path
) -> None:
    """Tell the operator where the bridge listens, its token, and how to reach the CLI."""
    base = settings.public_base_url or f"http://{bind}"
    print("\nEntra ID SCIM bridge is running")
    print(f"  Tenant URL:    {base}/scim/v2")
    if token:
        print(f"  Secret Token:  {token}")
    else:
        print("  Secret Token:  (tokens exist; create one with: flask --app app tokens create)")
    if embedded:
        print(f"  Redis:         embedded, {embedded.url}, data in {embedded.data_dir}")
    print(f"  CLI:           set -a; . {env_file}; set +a; flask --app app --help")
    print("Press Ctrl-C to stop.\n", flush=True)


def _stop_all(children: list[Child]) -> None:
    """SIGTERM to every process, Redis last (the others may still be writing)."""
    _stop([c for c in children if c.name != "redis"])
    _stop([c for c in children if c.name == "redis"])


def _stop(children: list[Child]) -> None:
    running = [c.process for c in children if c.process and c.process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + SHUTDOWN_GRACE
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def _metrics_dir(data_dir: Path) -> Path:
    """An empty directory where every process of this machine keeps its metrics
    (prometheus-client's multiprocess mode): what earlier runs left is wiped, so no dead
    process's values are summed."""
    path = (data_dir / "metrics").resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _mark_dead(pid: int, metrics_dir: str) -> None:
    """Drop a dead process's live gauges (counters and histograms are kept: a restart
    must not make them go down)."""
    from prometheus_client import multiprocess

    if Path(metrics_dir).is_dir():
        multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]  # untyped library


def _write_env_file(data_dir: Path, env: dict[str, str]) -> Path:
    """The settings this instance runs with, for the operator's CLI (mode 0600)."""
    path = data_dir / "bridge.env"
    data_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(n for n in env if n == "REDIS_URL" or n.startswith("BRIDGE_"))
    path.touch(mode=0o600)
    path.write_text("".join(f"{n}={env[n]}\n" for n in names))
    return path


def _came_from_env_file(env: dict[str, str], data_dir: Path) -> bool:
    """Whether REDIS_URL is the embedded Redis's, loaded from our own var/bridge.env."""
    path = data_dir / "bridge.env"
    if "REDIS_URL" not in env or env.get(EMBEDDED_MARK) != "1" or not path.exists():
        return False
    written = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return written.get("REDIS_URL") == env["REDIS_URL"]


def _local_secret_key(data_dir: Path, name: str = "secret.key") -> str:
    """A key kept beside the embedded data (mode 0600): ``secret.key`` encrypts target
    secrets, ``console.key`` signs the web console's sessions.

    Deployments set BRIDGE_SECRET_KEYS and BRIDGE_CONSOLE_SECRET_KEY from their secret
    store instead.
    """
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = SecretBox.generate_key()
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def _can_bind(bind: str) -> bool:
    host, _, port = bind.rpartition(":")
    return _bindable(host or "127.0.0.1", int(port))


def _free_or_none(port: int) -> int | None:
    return port if _bindable("127.0.0.1", port) else None


def _bindable(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` (a port in TIME_WAIT after a quick restart
    counts as free, as it does for the servers, which set SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _int(env: dict[str, str], name: str) -> int | None:
    return int(env[name]) if env.get(name) else None


if __name__ == "__main__":
    sys.exit(main())
