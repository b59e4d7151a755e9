"""The admin API's plumbing: flask-smorest Api, bearer authentication, JSON errors.

Errors under /admin are flask-smorest's ``{"code", "status", "message"}`` JSON (plus
``errors`` for field errors); the app's handlers route them here by path, so the SCIM
blueprint keeps its own error bodies.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import orjson
import redis
from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from flask_smorest import Api, abort
from werkzeug.exceptions import HTTPException, InternalServerError, default_exceptions

from bridge.admin import api_docs
from bridge.directory.tokens import VIEWER, digest
from bridge.errors import BridgeError, Unavailable
from bridge.scim.http import bearer_token
from bridge.web.body import MAX_JSON_DEPTH, too_deep
from bridge.web.ratelimit import retry_after

URL_PREFIX = "/admin"

SECURITY_SCHEME = "adminToken"

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""What a viewer token may do under /admin; anything else is refused with 403."""

log = logging.getLogger(__name__)


class AdminApi(Api):  # type: ignore[misc]  # flask-smorest is untyped
    """flask-smorest's Api; ``app.py`` registers the app's error handlers after it (they
    replace its own), and hands it the errors of /admin paths."""

    def handle_http_exception(self, error: HTTPException) -> ResponseReturnValue:
        """flask-smorest's error body, with the exception's description as its message."""
        payload, code, headers = super().handle_http_exception(error)
        payload.setdefault("message", error.description)
        return payload, code, headers


def init_app(app: Flask) -> AdminApi:
    """Configure and create the Api; the caller registers the admin blueprint on it."""
    app.config.setdefault("API_TITLE", "Entra SCIM bridge admin API")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", URL_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {"security": [{SECURITY_SCHEME: []}]})
    api_docs.init_app(app, app.config["BRIDGE_SETTINGS"], URL_PREFIX)  # before the Api
    api = AdminApi(app)
    api.spec.components.security_scheme(SECURITY_SCHEME, {"type": "http", "scheme": "bearer"})
    app.before_request(authenticate)
    app.before_request(check_json_body)
    return api


def current_api() -> AdminApi:
    """The app's admin Api (flask-smorest keeps it by config prefix)."""
    api: AdminApi = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    return api


def is_admin_request() -> bool:
    """Whether the request is under /admin (its errors get the admin format)."""
    path = request.path
    return path == URL_PREFIX or path.startswith(URL_PREFIX + "/")


def authenticate() -> None:
    """Every /admin request, the OpenAPI document included, needs an admin token (the
    Swagger UI page and its scripts, which hold no data, do not); a viewer's may only read."""
    if not is_admin_request() or api_docs.is_docs_request(current_app):
        return
    token = bearer_token()
    if token is None:
        _unauthorized("an admin bearer token is required")
    try:
        info = current_app.extensions["bridge"].admin_tokens.identify(token)
    except Unavailable:
        abort(503, message="Redis is unavailable, retry later")
    if info is None:
        _unauthorized("the bearer token is not a valid admin token")
    if info.role == VIEWER and request.method not in READ_METHODS:
        abort(403, message="this admin token has the viewer role: it may only read")
    wait = current_app.extensions["rate_limiter"].wait(digest(token))
    if wait:
        abort(
            429,
            message="too many requests with this token",
            headers={"Retry-After": retry_after(wait)},
        )


def check_json_body() -> None:
    """A JSON body must parse and nest at most MAX_JSON_DEPTH levels, checked before
    flask-smorest parses it again: its parser fails on deep nesting with a RecursionError."""
    if not is_admin_request() or not request.is_json:
        return
    data = request.get_data(cache=True)  # the parser reuses it; BodyLimit caps it
    if not data:
        return
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        abort(400, message=f"the request body is not valid JSON: {exc}")
    if too_deep(value):
        abort(400, message=f"the request body nests deeper than {MAX_JSON_DEPTH} levels")


def _unauthorized(message: str) -> NoReturn:
    abort(401, message=message, headers={"WWW-Authenticate": 'Bearer realm="admin"'})
    raise AssertionError("abort raises")


def error_response(
    status: int, message: str, errors: dict[str, Any] | None = None
) -> ResponseReturnValue:
    """A flask-smorest error body for ``status``."""
    exc = _http_exception(status)
    data: dict[str, Any] = {"message": message}
    if errors:
        data["errors"] = errors
    exc.data = data  # type: ignore[attr-defined]  # where flask-smorest reads the body from
    return current_api().handle_http_exception(exc)


def http_error_response(exc: HTTPException) -> ResponseReturnValue:
    """Werkzeug's HTTP errors (404, 405, 413...) under /admin, in the admin format."""
    return current_api().handle_http_exception(exc)


def domain_error_response(error: BridgeError) -> ResponseReturnValue:
    """A domain error (or a SCIM error raised by shared code) in the admin format."""
    return error_response(error.status, error.message or "error", error.details)


def unexpected_error_response(exc: Exception) -> ResponseReturnValue:
    """Log the traceback; the client learns only that the server failed."""
    if isinstance(exc, redis.RedisError):
        log.warning("Redis error on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "Redis is unavailable, retry later")
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal error; see the bridge's log")


def _http_exception(status: int) -> HTTPException:
    return default_exceptions.get(status, InternalServerError)()
