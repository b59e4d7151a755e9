"""HTTP towards targets, on urllib3: pooled keep-alive connections, strict timeouts, no
redirects, no proxies from the environment, certificates checked against certifi's roots.

Every delivery makes one or two requests, so the client's own cost is much of a delivery's
CPU: urllib3 spends about half of what httpx, with its cookie jars, hooks and URL models,
does per request (0.4 against 0.9 ms measured here for a small POST).

:class:`TargetHttp` is shared by every thread of a process for one target (urllib3's pools
are thread-safe); :class:`Answer` is what a request returns, read in full.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import certifi
import orjson
import urllib3
from urllib3 import HTTPHeaderDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import HTTPError as TransportError
from urllib3.util.url import parse_url

from bridge.targets.base import TargetError

USER_AGENT = "entra-scim-bridge"

POOL_SIZE = 8
"""Keep-alive connections kept per target host (a process's lanes share them); more are
opened when more requests run at once, and closed after their answer."""

MAX_ANSWER_BYTES = 10 * 1024 * 1024
"""Longest answer body read from a target; a longer one is an unreadable answer."""

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt (plus network errors and timeouts)."""

TOKEN_LEEWAY_SECONDS = 60
"""A cached OAuth2 token is renewed this long before it expires."""

DEFAULT_TOKEN_LIFETIME = 3600
"""Assumed lifetime when a token response has no ``expires_in``."""

ROUTES_KEPT = 256
"""Request URLs whose connection pool and path a :class:`TargetHttp` keeps at hand (a
webhook target sends to one; a SCIM target's URLs name resources); past it, it starts over."""

URL_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS"})
"""Methods whose headers urllib3 sends as given (others, as an ``HTTPHeaderDict``)."""

ONE_WRITE_MAX_BODY = 64 * 1024
"""Longest body sent in one write with its request's headers (a longer one takes several
packets anyway, and would only be copied)."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds to open a connection to a target, and to wait for each read of its answer."""

    connect: float
    read: float


@dataclass(frozen=True)
class Answer:
    """A target's answer, read in full."""

    status_code: int
    headers: dict[str, str]
    content: bytes
    url: str

    @property
    def is_success(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON."""
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError as exc:
            raise ValueError(str(exc)) from exc

    def header(self, name: str) -> str | None:
        """A header's value, by case-insensitive name."""
        return self.headers.get(name.lower())


class OneWriteConnection(HTTPConnection):
    """urllib3's connection, sending a request's headers and its body of bytes in one write.

    urllib3 sends the header block (http.client's ``endheaders``) and then the body, in two
    ``sendall`` calls: with TCP_NODELAY, two packets and two system calls per request,
    where one does. Everything else (connecting, TLS, timeouts, errors) is urllib3's."""

    _holding = False
    """The request's next write is its header block: held for the body to join it."""
    _header_block: bytes | None = None

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        *,
        chunked: bool = False,
        preload_content: bool = True,
        decode_content: bool = True,
        enforce_content_length: bool = True,
    ) -> None:
        """urllib3's request, a body of bytes written with the header block."""
        self._holding = (
            isinstance(body, bytes) and 0 < len(body) <= ONE_WRITE_MAX_BODY and not chunked
        )
        try:
            super().request(
                method,
                url,
                body=body,
                headers=headers,
                chunked=chunked,
                preload_content=preload_content,
                decode_content=decode_content,
                enforce_content_length=enforce_content_length,
            )
        finally:
            held, self._header_block, self._holding = self._header_block, None, False
        if held is not None:  # no body followed it after all
            super().send(held)

    def send(self, data: Any) -> None:
        """Write ``data``; the header block of a request with a body waits for the body."""
        if self._holding:
            self._holding, self._header_block = False, data
            return
        if self._header_block is not None:
            data, self._header_block = self._header_block + data, None
        super().send(data)


class OneWriteHTTPSConnection(OneWriteConnection, HTTPSConnection):
    """:class:`OneWriteConnection` over TLS (one TLS record where there were two)."""


class OneWritePool(HTTPConnectionPool):
    """urllib3's pool of :class:`OneWriteConnection`."""

    ConnectionCls = OneWriteConnection


class OneWriteHTTPSPool(HTTPSConnectionPool):
    """urllib3's pool of :class:`OneWriteHTTPSConnection`."""

    ConnectionCls = OneWriteHTTPSConnection


POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {
    "http": OneWritePool,
    "https": OneWriteHTTPSPool,
}
"""The pools a :class:`TargetHttp`'s manager makes, by scheme."""


class TargetHttp:
    """Requests to one target, authenticated as it requires (see :func:`target_http`)."""

    def __init__(
        self,
        timeouts: Timeouts,
        headers: dict[str, str] | None = None,
        token: ClientCredentials | None = None,
    ) -> None:
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=POOL_SIZE,
            timeout=urllib3.Timeout(connect=timeouts.connect, read=timeouts.read),
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        self.pool.pool_classes_by_scheme = POOL_CLASSES
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.token = token
        self._routes: dict[str, tuple[HTTPConnectionPool, str]] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        what: str,
    ) -> Answer:
        """One request; TargetError (retryable) when the target cannot be reached or does
        not answer in time. After a 401 with OAuth2, a fresh token and one more try."""
        if params:
            url = f"{url}?{urlencode(params)}"
        sent = {**self.headers, **(headers or {})}
        if self.token is None:
            return self._send(method, url, body, sent, what)
        sent["Authorization"] = f"Bearer {self.token.current(self)}"
        answer = self._send(method, url, body, sent, what)
        if answer.status_code == 401:
            self.token.forget()
            sent["Authorization"] = f"Bearer {self.token.current(self)}"
            answer = self._send(method, url, body, sent, what)
        return answer

    def _send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], what: str
    ) -> Answer:
        try:
            pool, path = self._route(url)
            response = pool.urlopen(
                method,
                path,
                body=body,
                headers=headers if method in URL_METHODS else HTTPHeaderDict(headers),
                redirect=False,
                assert_same_host=False,
                preload_content=False,
            )
            content = response.read(MAX_ANSWER_BYTES + 1)
        except TransportError as exc:
            raise transport_error(exc, what) from exc
        if len(content) > MAX_ANSWER_BYTES:
            response.close()  # the rest is never read: the connection cannot be reused
            raise TargetError(
                f"{what}: answer longer than {MAX_ANSWER_BYTES} bytes", retryable=False
            )
        response.release_conn()
        answer_headers = {k.lower(): v for k, v in response.headers.items()}
        return Answer(response.status, answer_headers, content, url)

    def _route(self, url: str) -> tuple[HTTPConnectionPool, str]:
        """The pool and the request path of ``url``, as ``PoolManager.request`` finds them
        (it parses the URL and looks its pool up on every request: about 150,000
        instructions of a webhook delivery); a pool the manager has closed since (evicted
        for a fifth host, or by :meth:`close`) is looked up again."""
        route = self._routes.get(url)
        if route is None or route[0].pool is None:
            parsed = parse_url(url)
            pool = self.pool.connection_from_host(parsed.host, parsed.port, parsed.scheme)
            route = (pool, parsed.request_uri)
            if len(self._routes) >= ROUTES_KEPT:
                self._routes.clear()
            self._routes[url] = route
        return route

    def close(self) -> None:
        """Close the pooled connections (the target's settings changed)."""
        self.pool.clear()
        self._routes.clear()


def retry_after_seconds(answer: Answer) -> float | None:
    """``Retry-After`` as seconds (delta form; the HTTP-date form is rare from APIs)."""
    value = answer.header("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def raise_for_answer(answer: Answer, what: str) -> None:
    """TargetError for a non-2xx answer, retryable per RETRYABLE_STATUSES."""
    if answer.is_success:
        return
    detail = answer.text[:300].strip()
    raise TargetError(
        f"{what}: HTTP {answer.status_code} {detail}",
        retryable=answer.status_code in RETRYABLE_STATUSES,
        status=answer.status_code,
        retry_after=retry_after_seconds(answer),
    )


def transport_error(exc: TransportError, what: str) -> TargetError:
    """Network errors and timeouts are retryable; the message says which, in words."""
    return TargetError(f"{what}: {_failure(exc)}", retryable=True)


def _failure(exc: TransportError) -> str:
    # urllib3's NewConnectionError is a ConnectTimeoutError too: refused before timed out
    reason = getattr(exc, "reason", None)
    cause = reason if isinstance(reason, TransportError) else exc
    if isinstance(cause, NewConnectionError):
        detail = str(cause).rpartition(": ")[2] or "refused"
        return f"cannot connect ({detail})"
    if isinstance(cause, ConnectTimeoutError):
        return "no connection within the connect timeout"
    if isinstance(cause, ReadTimeoutError):
        return "no answer within the read timeout"
    if isinstance(cause, SSLError):
        return f"TLS failed ({cause})"
    if isinstance(cause, ProtocolError):
        return f"connection broken ({cause})"
    return f"{type(cause).__name__}: {cause}"


class ClientCredentials:
    """An OAuth2 client-credentials token (RFC 6749 §4.4), cached per process until
    TOKEN_LEEWAY_SECONDS before it expires, and fetched again after a 401."""

    def __init__(
        self, token_url: str, client_id: str, client_secret: str, scope: str | None
    ) -> None:
        self.token_url = token_url
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope:
            form["scope"] = scope
        self.form = urlencode(form).encode()
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def current(self, http: TargetHttp) -> str:
        """The cached token, or a new one."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = self._fetch(http)
                self._expires = time.monotonic() + max(0.0, lifetime - TOKEN_LEEWAY_SECONDS)
            return self._token

    def forget(self) -> None:
        """The target refused the token: the next request fetches another."""
        with self._lock:
            self._token = None

    def _fetch(self, http: TargetHttp) -> tuple[str, float]:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            **http.headers,
        }
        answer = http._send("POST", self.token_url, self.form, headers, what="OAuth2 token request")
        if not answer.is_success:
            status = answer.status_code
            raise TargetError(
                f"OAuth2 token request failed: HTTP {status} {answer.text[:200]}",
                retryable=status >= 500 or status == 429,
                status=status,
            )
        try:
            body = answer.json()
            return body["access_token"], float(body.get("expires_in", DEFAULT_TOKEN_LIFETIME))
        except (ValueError, KeyError, TypeError) as exc:
            raise TargetError("OAuth2 token response has no access_token", retryable=False) from exc


def target_http(auth: dict[str, Any], timeouts: Timeouts) -> TargetHttp:
    """The HTTP client for a target's ``auth`` settings: none, a static bearer token, or
    OAuth2 client credentials."""
    kind = auth.get("type", "none")
    if kind == "bearer":
        return TargetHttp(timeouts, headers={"Authorization": f"Bearer {auth['token']}"})
    if kind == "oauth2":
        token = ClientCredentials(
            auth["token_url"], auth["client_id"], auth["client_secret"], auth.get("scope")
        )
        return TargetHttp(timeouts, token=token)
    return TargetHttp(timeouts)
