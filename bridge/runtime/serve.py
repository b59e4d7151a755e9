"""Run the whole bridge on one machine: ``python -m bridge.runtime.serve`` (``scripts/serve.sh``).

Starts an embedded Redis (when REDIS_URL is unset), the web tier (granian serving the
Flask app), a delivery worker and a sync worker; creates a first SCIM token if none
exists; prints the SCIM URL and token once ``/readyz`` answers. It then keeps them up: a
process that exits is started again (the embedded Redis on its own data, so nothing is
lost), and one that keeps failing as it starts stops the bridge with exit status 1 rather
than looping. Ctrl-C (or SIGTERM) stops everything cleanly.

Before it starts anything it refuses a web address in use (``BRIDGE_BIND``) and a bad
setting, in one line each. A ``REDIS_URL`` that came from its own ``var/bridge.env`` (a
shell that loaded the file) still means the embedded Redis (see bridge.runtime.envfile).
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import redis

from bridge.directory.tokens import TokenStore
from bridge.runtime import envfile
from bridge.runtime.config import SettingError, Settings
from bridge.runtime.embedded_redis import EmbeddedRedis
from bridge.runtime.envfile import EMBEDDED_MARK
from bridge.runtime.processes import die_with_parent
from bridge.targets.secrets import SecretBox

DEFAULT_BIND = "127.0.0.1:8000"
EMBEDDED_REDIS_PORT = 6390
"""The embedded Redis's port when free, so var/bridge.env stays valid across restarts."""

READY_TIMEOUT = 60.0
"""Seconds the web tier may take to answer /readyz at start."""

SHUTDOWN_GRACE = 20.0
"""Seconds children get to finish after SIGTERM before they are killed."""

RESTART_WINDOW = 60.0
"""A process that exits more than MAX_RESTARTS times within this many seconds is failing
to start, not crashing once: the bridge stops instead of restarting it forever."""

MAX_RESTARTS = 5


DEFAULT_WEB_PROCESSES = 2
DEFAULT_WEB_THREADS = 4


def web_options(env: Mapping[str, str]) -> tuple[int, int]:
    """``WEB_CONCURRENCY`` (web processes) and ``BRIDGE_WEB_THREADS`` (threads in each)."""
    return (
        _positive(env, "WEB_CONCURRENCY", DEFAULT_WEB_PROCESSES),
        _positive(env, "BRIDGE_WEB_THREADS", DEFAULT_WEB_THREADS),
    )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SettingError(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


def web_command(bind: str, workers: int, threads: int, access_log: bool) -> list[str]:
    """The web tier: granian serving ``app:serve_app()`` over WSGI.

    Request headers are parsed outside Python with a time limit, so clients that send
    slowly hold no application thread; bodies are capped while they are read (see
    bridge.web.body)."""
    host, _, port = bind.rpartition(":")
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "app:serve_app",
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
    if envfile.came_from_env_file(env):
        del env["REDIS_URL"]  # our own var/bridge.env's: the embedded Redis is ours to start
    env.pop(EMBEDDED_MARK, None)
    data_dir = Path(env.get("BRIDGE_DATA_DIR", Settings.data_dir))
    bind = env.get("BRIDGE_BIND", DEFAULT_BIND)
    problem = _bind_problem(bind)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    try:
        Settings.from_env(env)  # a bad setting is one line here, not a traceback per process
        web_options(env)
        embedded = _embedded(env, data_dir)
    except ValueError as exc:
        print(f"bad setting: {exc}", file=sys.stderr)
        return 2
    if embedded is not None:
        env["REDIS_URL"] = env[EMBEDDED_MARK] = embedded.url
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
        env_file = envfile.write(data_dir, env)
        if not _wait_ready(bind, children, lambda: stopping):
            if stopping:
                return 0
            print("the web tier did not start; see its output above", file=sys.stderr)
            return 1
        _announce(settings, bind, token, embedded, env_file)
        return _supervise(children, lambda: stopping, env["PROMETHEUS_MULTIPROC_DIR"])
    except (RuntimeError, redis.RedisError) as exc:
        print(f"stopping: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop_all(children)


def _embedded(env: dict[str, str], data_dir: Path) -> EmbeddedRedis | None:
    """The embedded Redis to start, when REDIS_URL names none: on BRIDGE_REDIS_PORT, else
    on 6390 when free (so var/bridge.env stays valid across restarts), else any port."""
    if "REDIS_URL" in env:
        return None
    port = None
    if env.get("BRIDGE_REDIS_PORT"):
        try:
            port = int(env["BRIDGE_REDIS_PORT"])
        except ValueError:
            raise ValueError(
                f"BRIDGE_REDIS_PORT must be a port number, not {env['BRIDGE_REDIS_PORT']!r}"
            ) from None
        if not _bindable("127.0.0.1", port):
            raise ValueError(f"BRIDGE_REDIS_PORT={port} is in use: choose another, or unset it")
    return EmbeddedRedis(data_dir / "redis", port=port or _free_or_none(EMBEDDED_REDIS_PORT))


def _children(env: dict[str, str], bind: str, embedded: EmbeddedRedis | None) -> list[Child]:
    """Redis first (when embedded), then the web tier and the two workers."""
    web = web_command(bind, *web_options(env), bool(env.get("BRIDGE_ACCESS_LOG")))
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
            child.run()  # the embedded Redis: on its own data and port, before it returns
        time.sleep(0.5)
    return 0


def _start_redis(embedded: EmbeddedRedis) -> subprocess.Popen[bytes]:
    embedded.start()
    assert embedded.process is not None
    return embedded.process


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # a session of its own: a terminal's Ctrl-C reaches this supervisor, which stops them
    return subprocess.Popen(args, env=env, start_new_session=True, preexec_fn=die_with_parent())


def _wait_ready(bind: str, children: list[Child], stopping: Callable[[], bool]) -> bool:
    """Whether /readyz answers before READY_TIMEOUT, before the web tier gives up (granian
    exits when its workers keep failing as they start) and before a stop is asked."""
    host, _, port = bind.rpartition(":")
    url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}/readyz"
    web = next(c for c in children if c.name == "web")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not web.exited() and not stopping():
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
        print("  Secret Token:  (tokens exist; create one with: bridge tokens create)")
    if embedded:
        print(f"  Redis:         embedded, {embedded.url}, data in {embedded.data_dir}")
    print(f"  CLI:           {cli_line(env_file)}")
    print("Press Ctrl-C to stop.\n", flush=True)


def cli_line(env_file: Path) -> str:
    """How to run the CLI from any shell: the venv's ``bridge`` finds this env file (the
    project's own var/ from anywhere; another data folder when BRIDGE_DATA_DIR names it)."""
    command = Path(sys.executable).parent / "bridge"
    program = str(command) if command.exists() else f"{sys.executable} -m bridge.runtime.command"
    data_dir = env_file.parent.resolve()
    if data_dir != envfile.PROJECT_ROOT / envfile.DEFAULT_DATA_DIR:
        program = f"BRIDGE_DATA_DIR={data_dir} {program}"
    return f"{program} --help"


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


def _bind_problem(bind: str) -> str:
    """Why the web tier cannot listen on ``bind`` (in use, not an address here), or ''.

    A port another process listens on is refused, whatever socket options it used: the
    check binds without SO_REUSEPORT, which is how two servers would share a port."""
    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        return f"BRIDGE_BIND={bind} is not host:port"
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "127.0.0.1", int(port)))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{bind} is in use: stop what listens there, or set BRIDGE_BIND"
            return f"cannot listen on BRIDGE_BIND={bind}: {exc.strerror}"
    return ""


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


if __name__ == "__main__":
    sys.exit(main())
