"""A fake OpenID Connect provider shaped like Entra's v2.0 endpoints, served over TLS.

``GET /<tenant>/v2.0/.well-known/openid-configuration``, ``GET /<tenant>/oauth2/v2.0/authorize``
(signs the configured user in at once and answers ``redirect_uri`` with a code: an
auto-posting form for ``response_mode=form_post``, as Entra does, else a redirect),
``POST /<tenant>/oauth2/v2.0/token`` (authorization code grant: client secret, redirect
URI and the PKCE S256 verifier are checked) and ``GET /<tenant>/discovery/v2.0/keys``.
The ID token is RS256-signed. Knobs: ``id_token_changes`` (claims to override or, as
None, remove) and ``sign_with`` (another private key, same ``kid``), to make bad tokens.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeOidc:
    tenant_id: str
    client_id: str
    client_secret: str
    base_url: str = ""
    user: dict = field(default_factory=dict)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    sign_with: rsa.RSAPrivateKey | None = None
    id_token_changes: dict = field(default_factory=dict)
    authorize_requests: list[dict] = field(default_factory=list)
    token_requests: list[dict] = field(default_factory=list)
    codes: dict[str, dict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.url_map = Map(
            [
                Rule("/<tenant>/v2.0/.well-known/openid-configuration", endpoint="discovery"),
                Rule("/<tenant>/oauth2/v2.0/authorize", endpoint="authorize"),
                Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
                Rule("/<tenant>/discovery/v2.0/keys", endpoint="keys"),
            ]
        )

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
            if args.get("tenant") != self.tenant_id:
                raise NotFound()
            response = getattr(self, f"_{endpoint}")(request)
        except HTTPException as exc:
            response = exc.get_response()
        return response(environ, start_response)

    def _json(self, body: dict, status: int = 200) -> Response:
        return Response(orjson.dumps(body), status=status, mimetype="application/json")

    def _discovery(self, request: Request) -> Response:
        base = self.authority
        return self._json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    def _keys(self, request: Request) -> Response:
        numbers = self.key.public_key().public_numbers()

        def b64int(n: int) -> str:
            return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        key = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": b64int(numbers.n),
            "e": b64int(numbers.e),
        }
        return self._json({"keys": [key]})

    def _authorize(self, request: Request) -> Response:
        args = request.args.to_dict()
        with self.lock:
            self.authorize_requests.append(args)
        if args.get("client_id") != self.client_id or args.get("response_type") != "code":
            return self._json({"error": "invalid_request"}, 400)
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "redirect_uri": args.get("redirect_uri"),
                "nonce": args.get("nonce"),
                "challenge": args.get("code_challenge"),
                "method": args.get("code_challenge_method"),
            }
        answer = {"code": code, "state": args.get("state", "")}
        if args.get("response_mode") != "form_post":
            location = f"{args['redirect_uri']}?{urlencode(answer)}"
            return Response(status=302, headers={"Location": location})
        inputs = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(v)}"/>' for k, v in answer.items()
        )
        page = (
            f'<html><body onload="document.forms[0].submit()"><form method="POST" '
            f'action="{html.escape(args["redirect_uri"])}">{inputs}</form></body></html>'
        )
        return Response(page, mimetype="text/html")

    def _token(self, request: Request) -> Response:
        form = request.form.to_dict()
        with self.lock:
            self.token_requests.append(form)
            grant = self.codes.pop(form.get("code", ""), None)
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return self._json({"error": "invalid_client"}, 401)
        if grant is None or form.get("grant_type") != "authorization_code":
            return self._json({"error": "invalid_grant", "error_description": "bad code"}, 400)
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return self._json({"error": "invalid_grant", "error_description": "redirect_uri"}, 400)
        verifier = form.get("code_verifier", "")
        if (
            grant["method"] != "S256"
            or _b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]
        ):
            return self._json({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "sub": uuid.uuid4().hex,
            "tid": self.tenant_id,
            "ver": "2.0",
            "nonce": grant["nonce"],
            **self.user,
        }
        for name, value in self.id_token_changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        id_token = jwt.encode(
            claims, self.sign_with or self.key, algorithm="RS256", headers={"kid": self.kid}
        )
        client_info = _b64url(orjson.dumps({"uid": claims.get("oid", "x"), "utid": self.tenant_id}))
        return self._json(
            {
                "token_type": "Bearer",
                "scope": "openid profile email",
                "expires_in": 3599,
                "access_token": secrets.token_urlsafe(32),
                "id_token": id_token,
                "client_info": client_info,
            }
        )
