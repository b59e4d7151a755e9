"""The bridge's Flask application and response classes.

Flask asks, for every hook and view it calls, whether the function is a coroutine
(``ensure_sync``), about ten times per request; the answer never changes for a function,
so it is remembered, by the function itself (a view's bound methods are new per request).

Werkzeug's ``Headers`` answer a lookup of a missing name by raising and catching an
HTTP exception; the bridge's hooks look at a response's header names once
(:func:`header_names`) and add what is missing instead.

Werkzeug converts every response's ``Location`` from an IRI to a URI as the response is
sent (a URL parse, IDNA host encoding and percent-quoting of each part: about 6 % of a
SCIM create's instructions). The locations the bridge makes are built from its base URL
and its own ids and are already URIs; a value made only of RFC 3986 characters is sent as
it is, and anything else is still converted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any
from wsgiref.types import WSGIEnvironment

from flask import Flask, Response
from werkzeug.datastructures import Headers

URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
"""RFC 3986 §2: unreserved, reserved and percent-encoding characters; a string of only
these needs no IRI-to-URI conversion."""


def header_names(headers: Headers) -> set[str]:
    """The lower-cased names of ``headers``, read in one pass."""
    return {key.lower() for key, _ in headers}


def put_header(headers: Headers, names: set[str], key: str, value: str) -> None:
    """Set ``key`` to ``value``: appended when ``names`` (lower-cased) lacks it, else replaced."""
    lowered = key.lower()
    if lowered in names:
        headers.set(key, value)
    else:
        headers.add(key, value)
        names.add(lowered)


class BridgeResponse(Response):
    """Flask's response, sending a ``Location`` that is already a URI without converting it."""

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        """Werkzeug's headers for the WSGI server, but an ASCII URI Location as it is."""
        headers = self.headers
        location = next((v for k, v in headers if k.lower() == "location"), None)
        if location is None or not URI_CHARACTERS.fullmatch(location):
            return super().get_wsgi_headers(environ)
        del headers["Location"]
        try:
            sent = super().get_wsgi_headers(environ)
        finally:
            headers["Location"] = location
        sent.add("Location", location)
        return sent


class BridgeFlask(Flask):
    """Flask, with ``ensure_sync``'s answer remembered per function."""

    response_class = BridgeResponse

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._is_coroutine: dict[Callable[..., Any], bool] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` as it is, or wrapped to run and wait when it is ``async def``."""
        key = getattr(func, "__func__", func)
        is_coroutine = self._is_coroutine.get(key)
        if is_coroutine is None:
            is_coroutine = self._is_coroutine[key] = iscoroutinefunction(func)
        return self.async_to_sync(func) if is_coroutine else func
