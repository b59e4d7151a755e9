"""An OAuth2 token endpoint (RFC 6749 §4.4, client credentials) on 127.0.0.1 that issues
one fixed access token and counts how often it was asked."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import orjson
from werkzeug.wrappers import Request, Response


@dataclass
class TokenEndpoint:
    client_id: str
    client_secret: str
    access_token: str
    expires_in: int = 3600
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self.lock:
            self.calls += 1
        form = request.form
        if request.method != "POST" or form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)(environ, start_response)
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _json({"error": "invalid_client"}, 401)(environ, start_response)
        body = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        return _json(body, 200)(environ, start_response)


def _json(body: dict, status: int) -> Response:
    return Response(orjson.dumps(body), status, content_type="application/json")
