"""HTTP plumbing for SCIM: JSON bodies, SCIM responses, ETags, bearer authentication.

Headers a client usually leaves out (``If-Match``, ``If-None-Match``) are read from the
WSGI environ (PEP 3333: ``HTTP_`` and the name in upper case): Werkzeug's
``request.headers.get`` answers a missing one by raising and catching an exception.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Request, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from bridge.scim import errors
from bridge.scim.resources import shorten
from bridge.web.body import MAX_JSON_DEPTH, may_be_too_deep, too_deep
from bridge.web.flask_app import BridgeResponse

SCIM_MEDIA_TYPE = "application/scim+json"
_ACCEPTED_BODY_TYPES = ("application/scim+json", "application/json")
_ETAG = re.compile(r'^(?:W/)?"([0-9]{1,16})"$')
"""An ETag this bridge makes: ``W/"<version>"``. Longer numbers than any version are no match."""

MAX_VERSION = 2**53 - 1
"""Versions above this are never stored: larger ones name no version (and would not fit the
JSON and Lua numbers a write carries)."""

log = logging.getLogger(__name__)


def scim_response(
    body: dict[str, Any] | None, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A response with ``body`` as ``application/scim+json``; no body, no content type."""
    data = orjson.dumps(body) if body is not None else b""
    mimetype = SCIM_MEDIA_TYPE if body is not None else None
    return BridgeResponse(data, status=status, headers=headers, mimetype=mimetype)


def error_response(error: errors.ScimError) -> Response:
    """The SCIM Error response (RFC 7644 §3.12) for ``error``, with its auth or retry header."""
    headers: dict[str, str] = {}
    if isinstance(error, errors.Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="scim"'
    if isinstance(error, errors.TooManyRequests):
        headers["Retry-After"] = error.retry_after
    return scim_response(error.to_scim(), error.status, headers)


def http_error_response(exc: HTTPException) -> Response:
    """Werkzeug's 404/405/413... as SCIM errors."""
    mapped = {
        404: errors.NotFound,
        405: errors.MethodNotAllowed,
        413: errors.PayloadTooLarge,
        415: errors.UnsupportedMediaType,
    }.get(exc.code or 500)
    if mapped is None:
        error = (
            errors.BadRequest(exc.description or "")
            if (exc.code or 500) < 500
            else errors.ScimError()
        )
        error.status = exc.code or 500
    else:
        error = mapped(exc.description or "")
    response = error_response(error)
    if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def unexpected_error_response(exc: Exception) -> Response:
    """Log the traceback; the client only learns that the server failed."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(errors.ScimError("internal error; see the bridge's log"))


def json_body() -> object:
    """The request body as JSON: 415 for other media types, 413 when too large, 400 when
    malformed or nested deeper than MAX_JSON_DEPTH.

    The cap is enforced while reading (:mod:`bridge.web.body`), chunked bodies included.
    """
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    mimetype = req.mimetype
    if mimetype and mimetype not in _ACCEPTED_BODY_TYPES:
        raise errors.UnsupportedMediaType(f"send {SCIM_MEDIA_TYPE} or application/json")
    limit = current_app.config["BRIDGE_SETTINGS"].max_body_bytes
    declared = req.content_length
    if declared is not None and declared > limit:
        raise errors.PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    data = req.get_data(cache=False)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidSyntax(f"the request body is not valid JSON: {exc}") from exc
    if may_be_too_deep(data) and too_deep(value):
        raise errors.InvalidSyntax(
            f"the request body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
        )
    g.scim_body = value  # for the audit trail (bridge.web.observe), parsed once
    return value


def parse_etag(value: object, what: str = "If-Match") -> int | None:
    """The version an ETag names (``W/"3"`` or ``"3"``); None for ``*`` or no value.

    A list of ETags is answered by its first one: SCIM clients send a single version.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "*")):
        return None
    match = _ETAG.match(value.split(",")[0].strip()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > MAX_VERSION:
        raise errors.PreconditionFailed(
            f"{what} {shorten(value)} names no version of this resource"
        )
    return int(match.group(1))


def if_match() -> int | None:
    """The version named by ``If-Match`` (RFC 7644 §3.14)."""
    return parse_etag(request.environ.get("HTTP_IF_MATCH"))


def if_none_match(version: int) -> bool:
    """Whether ``If-None-Match`` names ``version`` (weak comparison, RFC 9110 §13.1.2)."""
    value = request.environ.get("HTTP_IF_NONE_MATCH")
    if not value:
        return False
    if value.strip() == "*":
        return True
    return any(
        (match := _ETAG.match(v.strip())) is not None and int(match.group(1)) == version
        for v in value.split(",")
    )


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1); None without one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
