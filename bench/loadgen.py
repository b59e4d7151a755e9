"""A cheap closed-loop HTTP/1.1 load generator.

Each connection is driven by a *virtual user*: a generator that yields :class:`Request`
objects and is sent back each :class:`Response`, so dependent sequences (create, then
patch what was created) are plain Python. One process multiplexes its connections with
``selectors`` over raw non-blocking sockets, writes pre-formatted requests and parses
responses by ``Content-Length`` only, which costs a few tens of microseconds per request:
far less than the server spends. Connections are kept alive; when the server answers
``Connection: close`` (gunicorn's sync worker) the next request reconnects, and that cost
is part of the measured latency.

Every loop is bounded by a deadline and a request count; a connection that times out
is counted as an error and stops.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import selectors
import socket
import time
from array import array
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

SOCKET_TIMEOUT = 10.0
"""Seconds without progress after which a connection is abandoned as failed."""


@dataclass
class Request:
    method: str
    path: str
    body: bytes = b""
    label: str = ""
    expect: tuple[int, ...] = (200,)


@dataclass
class Response:
    status: int
    body: bytes


VirtualUser = Generator[Request, Response, None]
VirtualUserFactory = Callable[[int], VirtualUser]
"""Given a connection number (0..concurrency-1), the virtual user that drives it."""


@dataclass
class Stats:
    """What one process measured: latencies per label, errors, CPU, window."""

    latencies: dict[str, array] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    capped: int = 0
    cpu_seconds: float = 0.0

    def record(self, label: str, seconds: float) -> None:
        bucket = self.latencies.get(label)
        if bucket is None:
            bucket = self.latencies[label] = array("d")
        bucket.append(seconds)

    def error(self, label: str, detail: str) -> None:
        self.errors[label] = self.errors.get(label, 0) + 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{label}: {detail}")

    def merge(self, other: Stats) -> None:
        for label, values in other.latencies.items():
            self.latencies.setdefault(label, array("d")).extend(values)
        for label, n in other.errors.items():
            self.errors[label] = self.errors.get(label, 0) + n
        self.error_samples.extend(other.error_samples[: 5 - len(self.error_samples)])
        self.capped += other.capped
        self.cpu_seconds += other.cpu_seconds


class _Connection:
    def __init__(self, number: int, vu: VirtualUser, host: str, port: int, headers: bytes):
        self.number = number
        self.vu = vu
        self.host = host
        self.port = port
        self.headers = headers
        self.sock: socket.socket | None = None
        self.request: Request | None = None
        self.out = b""
        self.buf = bytearray()
        self.sent_at = 0.0
        self.last_progress = 0.0
        self.count = 0
        self.reconnect = False

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=SOCKET_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock = sock
        self.reconnect = False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def format(self, request: Request) -> bytes:
        head = (
            f"{request.method} {request.path} HTTP/1.1\r\n".encode()
            + self.headers
            + (
                b"Content-Type: application/scim+json\r\nContent-Length: %d\r\n\r\n"
                % len(request.body)
                if request.body or request.method in ("POST", "PUT", "PATCH")
                else b"\r\n"
            )
        )
        return head + request.body

    def parse(self) -> tuple[int, bytes] | None:
        """A complete response from the buffer, or None while incomplete."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buf[:end]).lower()
        status = int(head[9:12])
        if b"\r\ntransfer-encoding: chunked" in head:
            return self._parse_chunked(head, end + 4, status)
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else None])
        if len(self.buf) < end + 4 + length:
            return None
        body = bytes(self.buf[end + 4 : end + 4 + length])
        if b"\r\nconnection: close" in head:
            self.reconnect = True
        del self.buf[: end + 4 + length]
        return status, body

    def _parse_chunked(self, head: bytes, start: int, status: int) -> tuple[int, bytes] | None:
        """A ``Transfer-Encoding: chunked`` body (gunicorn sends one when the app gives no
        Content-Length, as scim2-server does), or None while incomplete."""
        body = bytearray()
        at = start
        while True:
            line_end = self.buf.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(self.buf[at:line_end]).split(b";", 1)[0], 16)
            at = line_end + 2
            if size == 0:
                trailer_end = self.buf.find(b"\r\n\r\n", at - 2)
                if trailer_end < 0:
                    return None
                at = trailer_end + 4
                break
            if len(self.buf) < at + size + 2:
                return None
            body += self.buf[at : at + size]
            at += size + 2
        if b"\r\nconnection: close" in head:
            self.reconnect = True
        del self.buf[:at]
        return status, bytes(body)


def run_virtual_users(
    host: str,
    port: int,
    token: str,
    factory: VirtualUserFactory,
    numbers: list[int],
    start_at: float,
    duration: float,
    max_requests: int,
) -> Stats:
    """Drive connections ``numbers`` from ``start_at`` for ``duration`` seconds.

    Only requests that complete inside the window are counted; each connection issues
    at most ``max_requests`` requests.
    """
    stats = Stats()
    headers = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n".encode()
    conns = [_Connection(n, factory(n), host, port, headers) for n in numbers]
    sel = selectors.DefaultSelector()
    deadline = start_at + duration
    for conn in conns:
        conn.connect()
    now = time.monotonic()
    if start_at > now:
        time.sleep(start_at - now)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    active = 0

    def issue(conn: _Connection, response: Response | None) -> bool:
        try:
            request = next(conn.vu) if response is None else conn.vu.send(response)
        except StopIteration:
            return False
        if conn.count >= max_requests:
            stats.capped += 1
            return False
        if conn.reconnect or conn.sock is None:
            if conn.sock is not None:
                sel.unregister(conn.sock)
                conn.close()
            conn.connect()
            sel.register(conn.sock, selectors.EVENT_READ, conn)
        conn.count += 1
        conn.request = request
        conn.out = conn.format(request)
        conn.sent_at = conn.last_progress = time.monotonic()
        flush(conn)
        return True

    def flush(conn: _Connection) -> None:
        assert conn.sock is not None
        try:
            sent = conn.sock.send(conn.out)
        except BlockingIOError:
            sent = 0
        conn.out = conn.out[sent:]
        sel.modify(
            conn.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out else 0), conn
        )

    def fail(conn: _Connection, detail: str) -> None:
        nonlocal active
        stats.error(conn.request.label if conn.request else "?", detail)
        if conn.sock is not None:
            sel.unregister(conn.sock)
            conn.close()
        active -= 1

    for conn in conns:
        sel.register(conn.sock, selectors.EVENT_READ, conn)
        if issue(conn, None):
            active += 1
    while active > 0:
        now = time.monotonic()
        if now >= deadline:
            break
        events = sel.select(timeout=min(0.5, deadline - now))
        for key, mask in events:
            conn = key.data
            if mask & selectors.EVENT_WRITE and conn.out:
                flush(conn)
            if not mask & selectors.EVENT_READ:
                continue
            try:
                chunk = conn.sock.recv(262144)
            except BlockingIOError:
                continue
            except OSError as exc:
                fail(conn, f"recv: {exc}")
                continue
            done_at = time.monotonic()
            if not chunk:
                fail(conn, "connection closed by server")
                continue
            conn.buf += chunk
            conn.last_progress = done_at
            try:
                parsed = conn.parse()
            except ValueError as exc:
                fail(conn, f"bad response: {exc}")
                continue
            if parsed is None:
                continue
            status, body = parsed
            request = conn.request
            assert request is not None
            if done_at > deadline:
                continue
            stats.record(request.label, done_at - conn.sent_at)
            if status not in request.expect:
                stats.error(request.label, f"HTTP {status} {body[:200]!r}")
            if not issue(conn, Response(status, body)):
                sel.unregister(conn.sock)
                conn.close()
                active -= 1
        stalled = time.monotonic() - SOCKET_TIMEOUT
        for conn in conns:
            if conn.sock is not None and conn.last_progress < stalled:
                fail(conn, "timed out")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats.cpu_seconds = usage.ru_utime + usage.ru_stime - cpu0
    for conn in conns:
        conn.close()
    sel.close()
    return stats


def _child(pipe, args) -> None:
    try:
        pipe.send(run_virtual_users(*args))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        pipe.send(exc)
    finally:
        pipe.close()


def run(
    host: str,
    port: int,
    token: str,
    factory: VirtualUserFactory,
    concurrency: int,
    duration: float,
    max_requests: int,
    processes: int = 1,
) -> tuple[Stats, float]:
    """Run ``concurrency`` connections split over ``processes`` forked processes.

    Returns the merged stats and the measurement window in seconds.
    """
    processes = max(1, min(processes, concurrency))
    groups = [list(range(concurrency))[i::processes] for i in range(processes)]
    start_at = time.monotonic() + 0.2 + 0.05 * concurrency
    if processes == 1:
        return run_virtual_users(
            host, port, token, factory, groups[0], start_at, duration, max_requests
        ), duration
    ctx = multiprocessing.get_context("fork")
    children = []
    try:
        for numbers in groups:
            parent_end, child_end = ctx.Pipe(duplex=False)
            args = (host, port, token, factory, numbers, start_at, duration, max_requests)
            proc = ctx.Process(target=_child, args=(child_end, args), daemon=True)
            proc.start()
            child_end.close()
            children.append((proc, parent_end))
        merged = Stats()
        limit = time.monotonic() + duration + SOCKET_TIMEOUT + 30
        for _proc, pipe in children:
            if not pipe.poll(max(0.0, limit - time.monotonic())):
                raise RuntimeError("a load generator process did not report")
            result = pipe.recv()
            if isinstance(result, BaseException):
                raise RuntimeError(f"load generator failed: {result!r}") from result
            merged.merge(result)
        return merged, duration
    finally:
        for proc, pipe in children:
            pipe.close()
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, 9)
                proc.join(5)
