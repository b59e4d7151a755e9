"""An address where TCP connects hang: a listening socket that never accepts.

With its accept queue full, Linux drops further SYNs instead of answering them, so a
client's connect waits for its own connect timeout, as towards a firewalled host.
"""

from __future__ import annotations

import socket

FILL_TIMEOUT = 0.3
"""Seconds a filling connect may take before the queue counts as full."""

MAX_FILLERS = 64
"""Connections tried at most to fill the queue."""


class Blackhole:
    """``url`` points at a port whose connects hang; ``close()`` releases everything."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers: list[socket.socket] = []
        self._fill()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _fill(self) -> None:
        for _ in range(MAX_FILLERS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(FILL_TIMEOUT)
            try:
                sock.connect(("127.0.0.1", self.port))
            except TimeoutError:
                sock.close()
                return
            self.fillers.append(sock)
        self.close()
        raise RuntimeError("the accept queue never filled: connects would not hang")

    def close(self) -> None:
        for sock in self.fillers:
            sock.close()
        self.fillers.clear()
        self.listener.close()
