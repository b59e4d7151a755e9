"""The console's blueprint and its edge: who is signed in, CSRF on every POST, roles,
sign-in and sign-out, and errors as pages.

Pages live in :mod:`bridge.console.pages` and actions (the POSTs) in
:mod:`bridge.console.actions`; both go through :func:`guard` first.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import redis
from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from bridge.console.auth import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    LOGIN_NONCE_SECONDS,
    NO_KEY,
    SESSION_COOKIE,
    SESSION_MAX_SECONDS,
    ConsoleSession,
    ConsoleSessions,
    Signer,
    clear_cookie,
    console_key,
    set_cookie,
    submitted_csrf,
)
from bridge.directory.tokens import digest
from bridge.errors import BridgeError
from bridge.runtime.services import Services

log = logging.getLogger(__name__)

blp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

OPEN_ENDPOINTS = frozenset({"console.login", "console.sign_in", "console.static"})
"""What answers without a session."""

EXTENSION_KEY = "bridge_console"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
"""Only the console's own script and style: no inline code, no other origin."""


def init_state(services: Services) -> dict[str, Any]:
    """What the console keeps on the app: its session store and signer."""
    return {
        "sessions": ConsoleSessions(services.redis, services.settings.key_prefix),
        "signer": Signer(console_key(services.settings)),
    }


def services() -> Services:
    """The app's services."""
    found: Services = current_app.extensions["bridge"]
    return found


def sessions() -> ConsoleSessions:
    """The console's session store."""
    found: ConsoleSessions = current_app.extensions[EXTENSION_KEY]["sessions"]
    return found


def signer() -> Signer:
    """The console's cookie and CSRF signer."""
    found: Signer = current_app.extensions[EXTENSION_KEY]["signer"]
    return found


def current() -> ConsoleSession:
    """The signed-in operator of this request (set by :func:`guard`)."""
    session: ConsoleSession = g.console
    return session


@blp.before_request
def guard() -> ResponseReturnValue | None:
    """A session for every page, a valid CSRF token on every POST, the admin role for
    every POST but signing out."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    session = _session()
    if session is None:
        if request.method == "GET" and not request.path.endswith(".json"):
            return redirect(url_for("console.login"))
        return _refuse(401, "Sign in first.")
    g.console = session
    if request.method == "POST":
        if not signer().csrf_ok("session", session.sid, submitted_csrf()):
            return _refuse(403, "The form's CSRF token is missing or wrong: reload the page.")
        if request.endpoint != "console.sign_out" and not session.can_write:
            return _refuse(403, "Your token has the viewer role: it may look, not change.")
    return None


def _session() -> ConsoleSession | None:
    """The request's session, if its cookie is good and its token still exists."""
    sid = signer().sid(request.cookies.get(SESSION_COOKIE))
    if sid is None:
        return None
    session = sessions().get(sid)
    if session is None:
        return None
    if services().admin_tokens.by_digest(session.token_digest) is None:
        sessions().close(sid)  # the token was revoked: so is every session it opened
        return None
    return session


def _refuse(status: int, message: str) -> ResponseReturnValue:
    if request.path.endswith(".json") or request.accept_mimetypes.best == "application/json":
        return {"message": message}, status
    return render_template("console/error.html", status=status, message=message), status


@blp.after_request
def headers(response: Response) -> Response:
    """Console pages are private and never framed; only the console's own assets run."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@blp.app_template_global()
def csrf_token() -> str:
    """The CSRF token of this request's session (for forms and the page's script)."""
    session: ConsoleSession | None = g.get("console")
    return signer().csrf("session", session.sid) if session else ""


@blp.context_processor
def page_globals() -> dict[str, Any]:
    """What every page's layout needs: the operator, and a way to take the notice left
    for them (only a whole page takes it: the overview's refreshing panel must not)."""
    session: ConsoleSession | None = g.get("console")

    def take_notice() -> tuple[str, str] | None:
        return sessions().notice(session.sid) if session else None

    return {"me": session, "take_notice": take_notice, "csrf_field": CSRF_FIELD}


# --- signing in and out ---------------------------------------------------------------------
@blp.get("/login")
def login() -> ResponseReturnValue:
    """The sign-in form, with a CSRF token bound to a fresh nonce cookie."""
    return _login_page(200)


def _login_page(status: int, error: str | None = None) -> ResponseReturnValue:
    nonce = secrets.token_urlsafe(24)
    body = render_template(
        "console/login.html",
        error=error or (None if signer().configured else NO_KEY),
        login_csrf=signer().csrf("login", nonce) if signer().configured else "",
    )
    response = Response(body, status, mimetype="text/html")
    set_cookie(response, LOGIN_COOKIE, nonce, LOGIN_NONCE_SECONDS)
    return response


@blp.post("/login")
def sign_in() -> ResponseReturnValue:
    """Trade an admin token for a session (a new id every time: no fixation)."""
    if not signer().configured:
        return _login_page(503)
    if not signer().csrf_ok("login", request.cookies.get(LOGIN_COOKIE), submitted_csrf()):
        return _login_page(403, "The form expired or its CSRF token is wrong: try again.")
    token = (request.form.get("token") or "").strip()
    info = services().admin_tokens.identify(token) if token else None
    if info is None:
        return _login_page(401, "That is not a valid admin token.")
    session = sessions().open(info, digest(token))
    log.info("console: %s signed in (%s)", info.name, session.role)
    response = redirect(url_for("console.overview"))
    set_cookie(response, SESSION_COOKIE, signer().cookie(session.sid), SESSION_MAX_SECONDS)
    clear_cookie(response, LOGIN_COOKIE)
    return response


@blp.post("/logout")
def sign_out() -> ResponseReturnValue:
    """End the session here and in Redis."""
    sessions().close(current().sid)
    response = redirect(url_for("console.login"))
    clear_cookie(response, SESSION_COOKIE)
    return response


# --- errors ---------------------------------------------------------------------------------
@blp.errorhandler(BridgeError)
def domain_error(error: BridgeError) -> ResponseReturnValue:
    """A domain error on a page (a target that does not exist, Redis away) as a page."""
    return _refuse(error.status, error.message or "error")


@blp.errorhandler(redis.RedisError)
def redis_error(exc: redis.RedisError) -> ResponseReturnValue:
    """Redis away: a 503 page (the operator retries), the cause in the log."""
    log.warning("console: Redis error on %s %s: %s", request.method, request.path, exc)
    return _refuse(503, "Redis is unavailable: retry in a moment.")


@blp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> ResponseReturnValue:
    """Werkzeug's HTTP errors inside the console, as console pages."""
    return _refuse(exc.code or 500, exc.description or exc.name)
