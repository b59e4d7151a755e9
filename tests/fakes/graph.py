"""A fake Microsoft identity platform and Microsoft Graph v1.0, served over HTTPS.

Identity (what MSAL asks for, authority ``https://127.0.0.1:<port>/<tenant>``):
``GET /<tenant>/v2.0/.well-known/openid-configuration`` and the client-credentials grant
``POST /<tenant>/oauth2/v2.0/token`` (client secret, or a ``client_assertion`` JWT signed
with the registered certificate).

Graph (every route wants ``Authorization: Bearer <issued token>``, else 401):
``users/delta``, ``groups/delta`` (with or without ``()``),
``servicePrincipals/{id}/appRoleAssignedTo``, ``groups/{id}/members/microsoft.graph.user``
(and its ``graph.user`` alias, which the SDK uses),
``users/{id or userPrincipalName}``, ``groups/{id}``. The directory is a
:class:`~tests.fakes.graph_tenant.Tenant`. Knobs: ``throttle(n)`` answers the next ``n``
Graph requests 429 with ``Retry-After``; ``tenant.expire_delta_tokens()`` makes saved delta
links answer 410 ``syncStateNotFound``; ``reject_tokens`` refuses every token request;
``hide_users`` answers 404 to reads of those users (deleted between a delta round and a read).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jwt
import orjson
from cryptography import x509
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.graph_tenant import USER_TYPE, SyncStateNotFound, Tenant

DEFAULT_PAGE_SIZE = 100
"""Page size when the client asks for none (Graph's default for directory objects)."""

MAX_PAGE_SIZE = 999
"""Largest page Graph serves for directory objects."""

TOKEN_LIFETIME = 3599
"""``expires_in`` of issued access tokens, in seconds."""


@dataclass
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class FakeGraph:
    """The WSGI app. ``base_url`` must be set to where it is served before use."""

    tenant_id: str
    client_id: str
    client_secret: str | None = None
    client_certificate: x509.Certificate | None = None
    tenant: Tenant = field(default_factory=Tenant)
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    token_calls: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)
    reject_tokens: bool = False
    throttle_next: int = 0
    retry_after: int = 1
    issued: set[str] = field(default_factory=set)
    hide_users: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.url_map = Map(
            [
                Rule("/<tenant>/v2.0/.well-known/openid-configuration", endpoint="discovery"),
                Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
                Rule("/v1.0/users/delta", endpoint="users_delta"),
                Rule("/v1.0/users/delta()", endpoint="users_delta"),
                Rule("/v1.0/groups/delta", endpoint="groups_delta"),
                Rule("/v1.0/groups/delta()", endpoint="groups_delta"),
                Rule("/v1.0/servicePrincipals/<sp>/appRoleAssignedTo", endpoint="assigned"),
                Rule("/v1.0/groups/<gid>/members/microsoft.graph.user", endpoint="members"),
                Rule("/v1.0/groups/<gid>/members/graph.user", endpoint="members"),
                Rule("/v1.0/users/<key>", endpoint="user"),
                Rule("/v1.0/groups/<gid>", endpoint="group"),
            ]
        )

    # -- knobs and assertions -------------------------------------------------------------
    def throttle(self, requests: int, retry_after: int = 1) -> None:
        """Answer the next ``requests`` Graph requests 429 with ``Retry-After``."""
        with self.lock:
            self.throttle_next, self.retry_after = requests, retry_after

    def graph_requests(self, path_part: str = "") -> list[Recorded]:
        """Recorded Graph (``/v1.0``) requests whose path contains ``path_part``."""
        return [r for r in self.requests if r.path.startswith("/v1.0") and path_part in r.path]

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    # -- WSGI -----------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        recorded = Recorded(
            request.method,
            request.path,
            dict(request.args),
            {k: v for k, v in request.headers.items() if k.lower() in _LOGGED_HEADERS},
        )
        with self.lock:
            self.requests.append(recorded)
        response = self._dispatch(request)
        recorded.status = response.status_code
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        try:
            endpoint, args = self.url_map.bind_to_environ(request.environ).match()
        except NotFound:
            return _error(404, "Request_ResourceNotFound", f"No route {request.path}")
        except HTTPException as exc:
            return _error(exc.code or 400, "BadRequest", exc.description or "")
        if endpoint in ("discovery", "token"):
            if args["tenant"] != self.tenant_id:
                return _json({"error": "invalid_tenant"}, 400)
            return getattr(self, f"_{endpoint}")(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.issued:
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        with self.lock:
            throttled = self.throttle_next > 0
            self.throttle_next -= throttled
        if throttled:
            response = _error(429, "TooManyRequests", "Too many requests.")
            response.headers["Retry-After"] = str(self.retry_after)
            return response
        return getattr(self, f"_{endpoint}")(request, **args)

    # -- identity -------------------------------------------------------------------------
    def _discovery(self, request: Request) -> Response:
        base = f"{self.base_url}/{self.tenant_id}"
        return _json(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        )

    def _token(self, request: Request) -> Response:
        form = request.form.to_dict()
        with self.lock:
            self.token_calls += 1
            self.token_requests.append(form)
        if form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        if self.reject_tokens or form.get("client_id") != self.client_id:
            return _invalid_client("AADSTS700016: Application not found in the directory.")
        if "client_assertion" in form:
            problem = self._check_assertion(form["client_assertion"], request.base_url)
            if problem:
                return _invalid_client(f"AADSTS700027: {problem}")
        elif self.client_secret is None or form.get("client_secret") != self.client_secret:
            return _invalid_client("AADSTS7000215: Invalid client secret provided.")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.issued.add(token)
        return _json({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "access_token": token})

    def _check_assertion(self, assertion: str, token_endpoint: str) -> str | None:
        """Why ``assertion`` is not a valid client assertion (RFC 7523 §3), or None."""
        if self.client_certificate is None:
            return "No certificate registered."
        try:
            claims = jwt.decode(
                assertion,
                self.client_certificate.public_key(),
                algorithms=["PS256", "RS256"],
                audience=token_endpoint,
                issuer=self.client_id,
                options={"require": ["exp", "aud", "iss", "sub", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return f"Client assertion failed signature validation: {exc}"
        return None if claims["sub"] == self.client_id else "sub is not the client id."

    # -- Graph ----------------------------------------------------------------------------
    def _users_delta(self, request: Request) -> Response:
        return self._delta(request, "users")

    def _groups_delta(self, request: Request) -> Response:
        return self._delta(request, "groups")

    def _delta(self, request: Request, kind: str) -> Response:
        size = _page_size(request)
        skip = request.args.get("$skiptoken")
        try:
            if skip:
                round_id, offset = skip.rsplit("-", 1)
                start = int(offset)
                if round_id not in self.tenant.rounds:
                    raise SyncStateNotFound(skip)
            else:
                select = _select(request)
                round_id = self.tenant.start_round(kind, select, request.args.get("$deltatoken"))
                start = 0
        except SyncStateNotFound:
            return _error(410, "syncStateNotFound", "The delta token has expired.")
        items, token = self.tenant.round_page(round_id, start, size)
        link = f"{self.graph_url}/{kind}/delta()"
        body: dict = {"@odata.context": f"{self.graph_url}/$metadata#{kind}", "value": items}
        if token is None:
            body["@odata.nextLink"] = f"{link}?$skiptoken={round_id}-{start + size}"
        else:
            body["@odata.deltaLink"] = f"{link}?$deltatoken={token}"
        response = _json(body)
        if "maxpagesize" in request.headers.get("Prefer", ""):
            response.headers["Preference-Applied"] = f"odata.maxpagesize={size}"
        return response

    def _assigned(self, request: Request, sp: str) -> Response:
        if sp != self.tenant.service_principal_id:
            return _error(404, "Request_ResourceNotFound", f"Resource '{sp}' does not exist.")
        return self._list(request, self.tenant.assignments, lambda a: a)

    def _members(self, request: Request, gid: str) -> Response:
        if gid not in self.tenant.groups.objects:
            return _error(404, "Request_ResourceNotFound", f"Resource '{gid}' does not exist.")
        users = [mid for mid, typ in self.tenant.members(gid) if typ == USER_TYPE]
        objects = self.tenant.users.objects
        select = _select(request)

        def render(mid: str) -> dict:
            return {"@odata.type": USER_TYPE, **self.tenant.render_user(objects[mid], select)}

        return self._list(request, users, render)

    def _list(self, request: Request, items: list, render) -> Response:
        size = _page_size(request)
        start = int(request.args.get("$skiptoken", 0))
        body: dict = {"value": [render(item) for item in items[start : start + size]]}
        if start + size < len(items):
            query = {k: v for k, v in request.args.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + size)
            body["@odata.nextLink"] = f"{self.base_url}{request.path}?{urlencode(query)}"
        return _json(body)

    def _user(self, request: Request, key: str) -> Response:
        uid = self.tenant.upn_index.get(key.lower(), key)
        record = self.tenant.users.objects.get(uid)
        if record is None or uid in self.hide_users:
            return _error(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist.")
        expand = request.args.get("$expand", "")
        return _json(self.tenant.render_user(record, _select(request), expand))

    def _group(self, request: Request, gid: str) -> Response:
        record = self.tenant.groups.objects.get(gid)
        if record is None:
            return _error(404, "Request_ResourceNotFound", f"Resource '{gid}' does not exist.")
        return _json(self.tenant.render_group(record, _select(request)))


_LOGGED_HEADERS = {"prefer", "retry-attempt", "client-request-id"}


def _select(request: Request) -> tuple[str, ...] | None:
    raw = request.args.get("$select")
    return tuple(p.strip() for p in raw.split(",") if p.strip()) if raw else None


def _page_size(request: Request) -> int:
    """``$top``, else ``Prefer: odata.maxpagesize=N``, capped at Graph's maximum."""
    size = request.args.get("$top")
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "odata.maxpagesize" and size is None:
            size = value
    return max(1, min(int(size or DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE))


def _json(body: dict, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, content_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _invalid_client(description: str) -> Response:
    return _json({"error": "invalid_client", "error_description": description}, 401)
