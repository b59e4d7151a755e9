"""Application factory: ``create_app()`` builds the bridge; the web server calls it once per process."""

from __future__ import annotations

from flask import Flask, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from bridge import console
from bridge.admin import api as admin_api
from bridge.admin.resync_cli import reconcile_cli, resync_cli, status_cli
from bridge.admin.targets_cli import targets_cli
from bridge.admin.tokens_cli import admin_tokens_cli, tokens_cli
from bridge.admin.views import blp as admin_blp
from bridge.errors import BridgeError
from bridge.observability import health, logs
from bridge.runtime import gil, heap, services
from bridge.runtime.config import Settings
from bridge.scim import errors
from bridge.scim.backpressure import Backpressure
from bridge.scim.http import (
    error_response,
    http_error_response,
    scim_response,
    unexpected_error_response,
)
from bridge.scim.views import blp as scim_blp
from bridge.sso.admin_views import blp as idps_admin_blp
from bridge.sso.cli import idps_cli
from bridge.sso.views import blp as sso_blp
from bridge.web import headers, observe
from bridge.web.body import BodyLimit
from bridge.web.flask_app import BridgeFlask
from bridge.web.ratelimit import RateLimiter
from bridge.web.scim_paths import ScimPaths


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app; tests hand in their own settings, production reads the environment."""
    settings = settings or Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    gil.hand_over_quickly()
    app = BridgeFlask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # BodyLimit caps every body while it is read
    app.wsgi_app = BodyLimit(ScimPaths(app.wsgi_app), settings.max_body_bytes)  # type: ignore[method-assign]
    state = services.init_app(app, settings)
    app.extensions["rate_limiter"] = RateLimiter(settings.rate_limit, settings.rate_burst)
    app.extensions["backpressure"] = Backpressure(
        state.redis, state.directory.changes_key, settings.max_backlog
    )
    app.register_blueprint(scim_blp)
    api = admin_api.init_app(app)
    api.register_blueprint(admin_blp)
    api.register_blueprint(idps_admin_blp)
    app.register_blueprint(sso_blp)
    console.init_app(app, state)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(admin_tokens_cli)
    app.cli.add_command(targets_cli)
    app.cli.add_command(resync_cli)
    app.cli.add_command(reconcile_cli)
    app.cli.add_command(status_cli)
    app.cli.add_command(idps_cli)
    _register_error_handlers(app)
    headers.init_app(app)
    observe.init_app(app, state, api)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> ResponseReturnValue:
        """503 only without Redis; workers, dispatchers, schedulers and the change
        stream are reported, not required (see bridge.observability.health)."""
        return health.readiness(state.redis, settings.key_prefix)

    return app


def serve_app() -> Flask:
    """The factory the web server calls (``app:serve_app``): the app from the environment,
    with its start-up objects out of the collector's full passes (see bridge.runtime.heap)."""
    app = create_app()
    heap.settle()
    return app


def _register_error_handlers(app: Flask) -> None:
    """The one error handler of each edge: under /admin flask-smorest's JSON error, elsewhere
    (/scim) a SCIM Error body; Flask's defaults for HTTP errors outside both."""

    @app.errorhandler(BridgeError)
    def domain_error(error: BridgeError) -> ResponseReturnValue:
        """A domain or SCIM error, in the format of the edge it was raised under."""
        if admin_api.is_admin_request():
            return admin_api.domain_error_response(error)
        return error_response(errors.from_domain(error))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        """Werkzeug's HTTP errors, in the format of the edge."""
        if request.path.startswith("/scim"):
            return http_error_response(exc)
        if admin_api.is_admin_request():
            return admin_api.http_error_response(exc)
        return exc

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        """Anything else: logged with its traceback, answered 500 (503 for Redis)."""
        if isinstance(exc, HTTPException):
            return http_error(exc)
        if admin_api.is_admin_request():
            return admin_api.unexpected_error_response(exc)
        return unexpected_error_response(exc)


__all__ = ["create_app", "scim_response"]
