"""The request id: accepted from ``X-Request-Id`` or made, and carried with the work.

A SCIM request's id travels into the change-stream entry its write appends (field
``req``), from there into the delivery job that takes the change, and onto every log line
of the delivery's attempts. Inside one process it is held in a context variable, so log
lines of the same request or delivery carry it without being handed it.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

HEADER = "X-Request-Id"
ENVIRON_KEY = "HTTP_X_REQUEST_ID"
"""The header's key in a WSGI environ (PEP 3333)."""

MAX_LENGTH = 128
"""Longest request id accepted from a client; a longer one is replaced."""

_SANE = re.compile(rf"[A-Za-z0-9._:/+=@-]{{1,{MAX_LENGTH}}}")
"""What a client's request id may look like: printable, no spaces, no quotes, bounded
(it ends up in logs, in Redis and in response headers)."""

_current: ContextVar[str | None] = ContextVar("bridge_request_id", default=None)


def new_request_id() -> str:
    """A fresh id: 16 random bytes in hex."""
    return secrets.token_hex(16)


def accept(header: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if header and _SANE.fullmatch(header):
        return header
    return new_request_id()


def current() -> str | None:
    """The id of the request or delivery this code runs for, if any."""
    return _current.get()


def set_current(request_id: str | None) -> None:
    """Make ``request_id`` this context's request id (None: no request)."""
    _current.set(request_id)


class Bound:
    """A block run as part of a request's work: ``with bound(request_id):``. A class, not
    a generator-based context manager: a delivery enters one per item, and the generator
    costs twice the instructions."""

    __slots__ = ("request_id", "_token")

    def __init__(self, request_id: str | None) -> None:
        self.request_id = request_id

    def __enter__(self) -> None:
        self._token = _current.set(self.request_id)

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


def bound(request_id: str | None) -> Bound:
    """Run a block as part of ``request_id``'s work (None: of none)."""
    return Bound(request_id)
