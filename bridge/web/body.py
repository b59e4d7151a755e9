"""Request bodies: a size cap enforced while reading, and a bound on JSON nesting.

:class:`BodyLimit` wraps ``wsgi.input`` so that no reader (the SCIM views, flask-smorest's
parser, Werkzeug's form parser) ever gets more than ``BRIDGE_MAX_BODY_BYTES``: a body
that declares a larger ``Content-Length`` is refused at its first read, and a chunked
one as soon as one byte past the cap arrives, so a 100 MB body costs the bridge about
the cap, not 100 MB. The refusal is Werkzeug's 413, which the app's error handlers turn
into a SCIM Error under /scim and the admin API's JSON under /admin.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any
from wsgiref.types import InputStream, StartResponse, WSGIApplication, WSGIEnvironment

from werkzeug.exceptions import RequestEntityTooLarge

MAX_JSON_DEPTH = 32
"""Deepest nesting of JSON arrays and objects a request body may have. SCIM messages nest
fewer than ten levels (a /Bulk PATCH of an extension's complex attribute); a bound keeps
every recursive walk of a body (bulkId references, mappings) far from Python's limit."""


class BodyTooLarge(RequestEntityTooLarge):
    """The request body is larger than the configured cap (HTTP 413)."""


class CappedStream(io.RawIOBase):
    """A readable stream that raises :class:`BodyTooLarge` instead of passing the cap."""

    def __init__(self, stream: InputStream, limit: int, declared: int | None) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self._declared = declared
        self._read = 0

    def readable(self) -> bool:
        """Always: this stream only reads."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``; refuse a declared or an actual length past the cap."""
        if self._declared is not None and self._declared > self._limit:
            raise self._refusal()
        # One byte more than the cap tells a body at the cap from one past it.
        wanted = min(len(buffer), self._limit + 1 - self._read)
        data = self._stream.read(wanted) if wanted > 0 else b""
        self._read += len(data)
        if self._read > self._limit:
            raise self._refusal()
        buffer[: len(data)] = data
        return len(data)

    def _refusal(self) -> BodyTooLarge:
        return BodyTooLarge(f"request bodies are limited to {self._limit} bytes")


class BodyLimit:
    """WSGI middleware: every request's body is read through a :class:`CappedStream`."""

    def __init__(self, app: WSGIApplication, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = CappedStream(stream, self.max_bytes, _content_length(environ))
        return self.app(environ, start_response)


def _content_length(environ: WSGIEnvironment) -> int | None:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or ""))
    except ValueError:
        return None


def too_deep(value: object, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests arrays and objects deeper than ``limit``.

    Walks one level at a time, without recursion: the check itself cannot exhaust Python's.
    """
    # only containers are kept from one level to the next; parsed JSON holds exactly
    # dicts and lists, so their types are compared rather than checked with isinstance
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        deeper = []
        for container in level:
            for item in container.values() if type(container) is dict else container:
                if type(item) in _CONTAINERS:
                    deeper.append(item)
        level = deeper
    return False


_CONTAINERS = frozenset({dict, list})


def may_be_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text ``data`` may nest deeper than ``limit``: each array or object opens
    with a bracket of its own, so text with at most ``limit`` of them cannot."""
    return data.count(b"{") + data.count(b"[") > limit
