"""Authentication towards targets: a static bearer token or OAuth2 client credentials.

The client-credentials grant (RFC 6749 §4.4) is a single form POST; its token is cached
per process until TOKEN_LEEWAY_SECONDS before it expires, and fetched again after a 401.
(authlib's httpx integration is being moved to httpx2, which would sit beside the httpx
that msgraph-sdk uses; the grant is small enough to keep here.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import Any

import httpx

from bridge.targets.base import TargetError, translate_transport_error

TOKEN_LEEWAY_SECONDS = 60
"""A cached OAuth2 token is renewed this long before it expires."""

DEFAULT_TOKEN_LIFETIME = 3600
"""Assumed lifetime when a token response has no ``expires_in``."""

USER_AGENT = "entra-scim-bridge"


class ClientCredentials(httpx.Auth):
    """httpx auth flow: adds a cached client-credentials token, renews it on 401."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        timeout: httpx.Timeout,
    ) -> None:
        self.token_url = token_url
        self.timeout = timeout
        self.form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if scope:
            self.form["scope"] = scope
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with the current token; after a 401, fetch a new one and send once more."""
        request.headers["Authorization"] = f"Bearer {self._current()}"
        response = yield request
        if response.status_code == 401:
            self._token = None
            request.headers["Authorization"] = f"Bearer {self._current()}"
            yield request

    def _current(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                self._token, lifetime = self._fetch()
                self._expires = time.monotonic() + max(0.0, lifetime - TOKEN_LEEWAY_SECONDS)
            return self._token

    def _fetch(self) -> tuple[str, float]:
        try:
            response = httpx.post(
                self.token_url,
                data=self.form,
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                timeout=self.timeout,
                trust_env=False,
            )
        except httpx.HTTPError as exc:
            raise translate_transport_error(exc, "OAuth2 token request") from exc
        if not response.is_success:
            status = response.status_code
            raise TargetError(
                f"OAuth2 token request failed: HTTP {status} {response.text[:200]}",
                retryable=status >= 500 or status == 429,
                status=status,
            )
        try:
            body = response.json()
            return body["access_token"], float(body.get("expires_in", DEFAULT_TOKEN_LIFETIME))
        except (ValueError, KeyError, TypeError) as exc:
            raise TargetError("OAuth2 token response has no access_token", retryable=False) from exc


def http_client(auth: dict[str, Any], timeout: httpx.Timeout) -> httpx.Client:
    """An HTTP client that authenticates every request as the target requires."""
    headers = {"User-Agent": USER_AGENT}
    flow: httpx.Auth | None = None
    kind = auth.get("type", "none")
    if kind == "bearer":
        headers["Authorization"] = f"Bearer {auth['token']}"
    elif kind == "oauth2":
        flow = ClientCredentials(
            auth["token_url"], auth["client_id"], auth["client_secret"], auth.get("scope"), timeout
        )
    return httpx.Client(headers=headers, auth=flow, timeout=timeout, trust_env=False)
