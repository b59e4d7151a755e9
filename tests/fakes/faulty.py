"""Faults for fake targets: fail the next N requests, answer slowly, hang, or be down.

:class:`Knobs` holds what a target is told to do; :class:`FaultMiddleware` applies it to a
WSGI app; :class:`Server` serves one on a fixed 127.0.0.1 port that can go down (connection
refused) and come back. Requests carrying :data:`INSPECT_HEADER` skip the faults, so a test
can read a target's state while the target misbehaves towards the bridge.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Response

from tests.live_server import QuietHandler

INSPECT_HEADER = "X-Fault-Inspect"
"""A test's own reads carry this header and see the target as it is, without faults."""


@dataclass
class Knobs:
    """What a fake target does to the bridge's requests; change it at any time."""

    fail_next: int = 0
    fail_status: int = 503
    delay: float = 0.0
    hang_next: int = 0
    hang_seconds: float = 0.0
    requests: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)

    def fail(self, count: int, status: int = 503) -> None:
        with self.lock:
            self.fail_next, self.fail_status = count, status

    def slow(self, seconds: float) -> None:
        """Answer every request after ``seconds`` (0: at once)."""
        self.delay = seconds
        if not seconds:
            self.release()

    def hang(self, count: int, seconds: float) -> None:
        """Hold the next ``count`` requests ``seconds`` each before answering them."""
        with self.lock:
            self.hang_next, self.hang_seconds = count, seconds

    def release(self) -> None:
        """End every wait now (requests held by ``slow`` or ``hang`` go on)."""
        self.wake.set()
        self.wake = threading.Event()

    def reset(self) -> None:
        with self.lock:
            self.fail_next = self.hang_next = 0
        self.slow(0)

    def _take(self) -> tuple[int | None, float]:
        """The status to fail this request with (None: serve it) and how long to wait."""
        with self.lock:
            self.requests += 1
            wait = self.delay
            if self.hang_next > 0:
                self.hang_next -= 1
                wait = max(wait, self.hang_seconds)
            if self.fail_next > 0:
                self.fail_next -= 1
                self.failed += 1
                return self.fail_status, wait
        return None, wait


class FaultMiddleware:
    """Applies :class:`Knobs` to every request of ``app`` but the inspecting ones."""

    def __init__(self, app, knobs: Knobs) -> None:
        self.app = app
        self.knobs = knobs

    def __call__(self, environ, start_response):
        if environ.get("HTTP_" + INSPECT_HEADER.upper().replace("-", "_")):
            return self.app(environ, start_response)
        status, wait = self.knobs._take()
        if wait:
            self.knobs.wake.wait(wait)
        if status is not None:
            return Response("failing on purpose", status)(environ, start_response)
        return self.app(environ, start_response)


class Server:
    """A threaded WSGI server on a fixed 127.0.0.1 port; ``down()`` refuses connections."""

    def __init__(self, app) -> None:
        self.app = app
        self.port = 0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> Server:
        if self._server is None:
            self._server = make_server(
                "127.0.0.1", self.port, self.app, threaded=True, request_handler=QuietHandler
            )
            self.port = self._server.server_port
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def down(self) -> None:
        """Stop listening: connections to the port are refused until ``up()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(10)
            self._server = self._thread = None
