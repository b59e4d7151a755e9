"""Pieces of the fan-out benchmark: child processes, paced SCIM writes, sink receipts."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from bench import entra
from bench.loadgen import Request, _Connection
from bench.server import REPO
from bridge.runtime.processes import die_with_parent

STOP_TIMEOUT = 10.0


class Child:
    """A process in its own session (it and anything it forks stop together)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args,
            cwd=REPO,
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole session at once: nothing gets to clean up."""
        if self.process is not None:
            _killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM to the session, SIGKILL if it lingers (and to anything left in it)."""
        process, self.process = self.process, None
        if process is not None:
            pgid = process.pid  # session leader: its pid is the group id
            if process.poll() is None:
                _killpg(pgid, signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    _killpg(pgid, signal.SIGKILL)
                    process.wait(STOP_TIMEOUT)
            _killpg(pgid, signal.SIGKILL)  # forked helpers (RQ's scheduler) left behind
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def session_pids(sid: int) -> list[int]:
    """Every live process of session ``sid`` (a child started with start_new_session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the name: state ppid pgrp session
            pids.append(int(entry))
    return pids


START_TIMEOUT = 30.0
"""Seconds a child may take to listen (or to answer its readiness check)."""


def wait_listening(child: Child, port: int, path: str | None = None) -> None:
    """Until ``child`` accepts connections on ``port`` (and answers 200 on ``path``)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and child.alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if path is None:
                    return
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not start:\n{child.log_tail()}")


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


SINK_TARGET: dict = {
    "auth": {"type": "none"},
    "resources": ["users", "groups"],
    "scope": {"type": "all"},
    "deprovision": "disable",
    "enabled": True,
    "shadow": False,
    "deletion_guard": {"max": 100, "window_seconds": 3600},
}
"""What a benchmark target pointing at a sink sets besides its name, kind and URL."""


# --- receipts ---------------------------------------------------------------------------


class Receipts:
    """Follows a sink's receipt file: first receipt time per (kind, key), duplicates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.first: dict[str, dict[str, float]] = {}
        self.duplicates: dict[str, int] = {}
        self.lines = 0

    def poll(self) -> int:
        """Read what was appended since the last call; returns the number of new lines."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        self.offset += end + 1
        new = 0
        for line in data[:end].decode().split("\n"):
            at, kind, key = line.split("\t", 2)
            seen = self.first.setdefault(kind, {})
            if key in seen:
                self.duplicates[kind] = self.duplicates.get(kind, 0) + 1
            else:
                seen[key] = float(at)
            new += 1
        self.lines += new
        return new

    def received(self, kind: str, keys: set[str]) -> int:
        seen = self.first.get(kind, {})
        return sum(1 for k in keys if k in seen)

    def times(self, kind: str) -> dict[str, float]:
        return self.first.get(kind, {})


def wait_for(
    receipts: list[tuple[Receipts, str]], keys: set[str], timeout: float, on_poll=None
) -> bool:
    """Poll until every sink has a receipt of ``kind`` for every key, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        done = True
        for rec, kind in receipts:
            rec.poll()
            if rec.received(kind, keys) < len(keys):
                done = False
        if on_poll is not None:
            on_poll()
        if done:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


# --- paced SCIM creates -----------------------------------------------------------------


@dataclass
class PacedResult:
    user_names: list[str]
    status: list[int] = field(default_factory=list)
    response_at: list[float] = field(default_factory=list)
    """time.time() when each response had arrived in full (nan: no response)."""
    latency: list[float] = field(default_factory=list)
    """seconds from send to response (nan: no response)."""
    lateness: list[float] = field(default_factory=list)
    """seconds each request left after its scheduled time (no free connection, slow loop)."""
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


def paced_creates(
    port: int,
    token: str,
    tags: list[str],
    rate: float,
    connections: int = 4,
    grace: float = 15.0,
) -> PacedResult:
    """POST /Users (Entra-shaped, one per tag) at ``rate``/s over keep-alive connections.

    Request *i* is sent at ``start + i / rate`` (open loop) on a free connection; when none
    is free it waits and its lateness is recorded. Bounded by the schedule plus ``grace``.
    """
    host = "127.0.0.1"
    headers = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n".encode()
    n = len(tags)
    nan = float("nan")
    out = PacedResult(
        user_names=[entra.user_name(t) for t in tags],
        status=[0] * n,
        response_at=[nan] * n,
        latency=[nan] * n,
        lateness=[nan] * n,
    )
    bodies = [entra.dumps(entra.entra_user(t)) for t in tags]
    sel = selectors.DefaultSelector()
    conns = [_Connection(k, None, host, port, headers) for k in range(connections)]
    for conn in conns:
        conn.connect()
        sel.register(conn.sock, selectors.EVENT_READ, conn)
    free = deque(conns)
    busy: dict[int, int] = {}  # connection number -> request index
    start = time.monotonic() + 0.05
    deadline = start + n / rate + grace
    out.started = time.time() + (start - time.monotonic())
    sent = 0
    try:
        while (sent < n or busy) and time.monotonic() < deadline:
            now = time.monotonic()
            while sent < n and free and now >= start + sent / rate:
                conn = free.popleft()
                if conn.reconnect or conn.sock is None:
                    if conn.sock is not None:
                        sel.unregister(conn.sock)
                        conn.close()
                    conn.connect()
                    sel.register(conn.sock, selectors.EVENT_READ, conn)
                request = Request("POST", "/scim/v2/Users", bodies[sent], "create", (201,))
                payload = conn.format(request)
                conn.sock.setblocking(True)
                conn.sock.sendall(payload)
                conn.sock.setblocking(False)
                conn.sent_at = time.monotonic()
                out.lateness[sent] = conn.sent_at - (start + sent / rate)
                busy[conn.number] = sent
                sent += 1
                now = time.monotonic()
            if sent < n and free:
                timeout = max(0.0, min(0.05, start + sent / rate - time.monotonic()))
            else:
                timeout = 0.05
            for key, _ in sel.select(timeout):
                conn = key.data
                try:
                    chunk = conn.sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    chunk = b""
                    out.errors.append(f"recv: {exc}")
                if not chunk:
                    index = busy.pop(conn.number, None)
                    if index is not None:
                        out.errors.append(f"request {index}: connection closed")
                    sel.unregister(conn.sock)
                    conn.close()
                    conn.buf.clear()
                    free.append(conn)
                    continue
                conn.buf += chunk
                parsed = conn.parse()
                if parsed is None:
                    continue
                status, body = parsed
                index = busy.pop(conn.number)
                out.response_at[index] = time.time()
                out.latency[index] = time.monotonic() - conn.sent_at
                out.status[index] = status
                if status != 201 and len(out.errors) < 10:
                    out.errors.append(f"request {index}: HTTP {status} {body[:200]!r}")
                free.append(conn)
        if sent < n or busy:
            out.errors.append(f"stopped at the deadline: {n - sent} unsent, {len(busy)} pending")
    finally:
        out.finished = time.time()
        for conn in conns:
            conn.close()
        sel.close()
    return out
