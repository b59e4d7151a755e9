"""Signing in to the console: sessions, their cookie, CSRF tokens and roles.

An operator signs in with an admin token. The console keeps a session in Redis::

    {prefix}:console:session:{sid}   hash: digest, id, name, role of the token; notice

and gives the browser only the session id, signed (itsdangerous) with the console key, in
a cookie that is HttpOnly, SameSite=Strict, scoped to /console, and Secure when the
request came over HTTPS (or the bridge's public URL is HTTPS). Signing out deletes the
session, so a copied cookie dies with it; revoking the token ends its sessions on their
next request (within the token cache's TOKEN_CACHE_SECONDS).

Every POST carries a CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``):
an HMAC of the session id under the console key, so it needs no storage and is worthless
for any other session. The sign-in form, which has no session yet, gets its token from a
random nonce in a short-lived cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis
from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from bridge.directory.tokens import ADMIN, TokenInfo
from bridge.runtime.config import Settings

SESSION_COOKIE = "bridge_console"
LOGIN_COOKIE = "bridge_console_login"
COOKIE_PATH = "/console"

SESSION_IDLE_SECONDS = 8 * 3600
"""A session nobody used for this long is gone (its Redis key expires)."""

SESSION_MAX_SECONDS = 24 * 3600
"""However busy, a session cookie is refused this long after sign-in: sign in again."""

LOGIN_NONCE_SECONDS = 3600
"""How long a sign-in form stays valid."""

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

NO_KEY = (
    "The console cannot sign anyone in: set BRIDGE_CONSOLE_SECRET_KEY (or BRIDGE_SECRET_KEYS, "
    "from which a key is derived) on the web tier."
)


def console_key(settings: Settings) -> bytes:
    """The key that signs session cookies and CSRF tokens: BRIDGE_CONSOLE_SECRET_KEY, or
    one derived from the first of BRIDGE_SECRET_KEYS (rotating that key signs everyone
    out); empty when neither is set (sign-in is then refused)."""
    if settings.console_secret_key:
        return settings.console_secret_key.encode()
    if settings.secret_keys:
        return hmac.new(
            settings.secret_keys[0].encode(), b"bridge console sessions", hashlib.sha256
        ).digest()
    return b""


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in operator: the session id and the admin token it signed in with."""

    sid: str
    token_digest: str
    token_id: str
    token_name: str
    role: str

    @property
    def can_write(self) -> bool:
        """Whether this operator may change anything (the ``admin`` role)."""
        return self.role == ADMIN


class ConsoleSessions:
    """Console sessions in Redis, one hash per session, expiring when idle."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix

    def key(self, sid: str) -> str:
        """The key of one session."""
        return f"{self.prefix}:console:session:{sid}"

    def open(self, info: TokenInfo, token_digest: str) -> ConsoleSession:
        """A new session for the admin token ``info`` (a new id at every sign-in)."""
        session = ConsoleSession(
            secrets.token_urlsafe(32), token_digest, info.id, info.name, info.role or ADMIN
        )
        fields: dict[str | bytes, str] = {
            "digest": session.token_digest,
            "id": session.token_id,
            "name": session.token_name,
            "role": session.role,
        }
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key(session.sid), mapping=fields)  # type: ignore[arg-type]  # redis-py's Mapping is invariant
        pipe.expire(self.key(session.sid), SESSION_IDLE_SECONDS)
        pipe.execute()
        return session

    def get(self, sid: str) -> ConsoleSession | None:
        """The session, its idle time reset; None when it ended or expired."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.key(sid))
        pipe.expire(self.key(sid), SESSION_IDLE_SECONDS)
        raw, _ = pipe.execute()
        if not raw:
            return None
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        return ConsoleSession(sid, fields["digest"], fields["id"], fields["name"], fields["role"])

    def close(self, sid: str) -> None:
        """End a session (sign-out, or its token was revoked)."""
        self.redis.delete(self.key(sid))

    def notify(self, sid: str, text: str, level: str = "ok") -> None:
        """Leave a message for the session's next page (the result of an action)."""
        self.redis.hset(self.key(sid), mapping={"notice": text, "notice_level": level})

    def notice(self, sid: str) -> tuple[str, str] | None:
        """Take the message left for this page, if any: (text, level)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.key(sid), ["notice", "notice_level"])
        pipe.hdel(self.key(sid), "notice", "notice_level")
        (text, level), _ = pipe.execute()
        return (text.decode(), (level or b"ok").decode()) if text else None


class Signer:
    """Signs session ids for the cookie and derives CSRF tokens, with the console key."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._cookie = URLSafeTimedSerializer(key or b"unset", salt="bridge-console-session")

    @property
    def configured(self) -> bool:
        """Whether there is a key (without one, nobody can sign in)."""
        return bool(self.key)

    def cookie(self, sid: str) -> str:
        """The cookie value for a session id."""
        return self._cookie.dumps(sid)

    def sid(self, cookie: str | None) -> str | None:
        """The session id a cookie carries, if its signature holds and it is not too old."""
        if not cookie or not self.configured:
            return None
        try:
            sid = self._cookie.loads(cookie, max_age=SESSION_MAX_SECONDS)
        except BadSignature:
            return None
        return sid if isinstance(sid, str) else None

    def csrf(self, purpose: str, value: str) -> str:
        """The CSRF token bound to a session id (``session``) or a sign-in nonce (``login``)."""
        return hmac.new(self.key, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, purpose: str, value: str | None, given: str | None) -> bool:
        """Whether ``given`` is the CSRF token for ``value``, compared in constant time."""
        if not self.configured or not value or not given:
            return False
        return hmac.compare_digest(self.csrf(purpose, value), given)


def submitted_csrf() -> str | None:
    """The CSRF token a request carries: the form field, or the header (scripts)."""
    return request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)


def over_https() -> bool:
    """Whether the browser talks to the bridge over HTTPS: the request itself, or the
    bridge's public URL (a TLS-terminating proxy in front)."""
    settings: Settings = current_app.config["BRIDGE_SETTINGS"]
    return request.is_secure or settings.public_base_url.startswith("https://")


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """A console cookie: HttpOnly, SameSite=Strict, /console only, Secure over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=over_https(),
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: Response, name: str) -> None:
    """Remove a console cookie."""
    response.delete_cookie(
        name, path=COOKIE_PATH, secure=over_https(), httponly=True, samesite="Strict"
    )
