"""OpenID Connect sign-in (authorization code flow with PKCE and nonce) through msal.

The IdP answers with ``response_mode=form_post`` (the code and state in a POST body,
not in a URL that logs and referrers keep). msal's ``initiate_auth_code_flow`` makes the state, the nonce and the PKCE verifier;
``acquire_token_by_auth_code_flow`` checks the state, redeems the code with the verifier,
and checks the ID token's issuer, audience, expiry and nonce. msal does not check the ID
token's signature (it came straight from the token endpoint over TLS); the bridge checks
it too, against the IdP's JWKS, with PyJWT. The flow waits in Redis between the two legs,
keyed by its state, and is taken once.

Keys::

    {p}:sso:oidc:{idp id}:{state}    the pending flow (JSON) and ``next``, for FLOW_TTL
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import msal
import orjson
import redis
import requests

from bridge.sso.idps import Idp
from bridge.sso.provision import OIDC_DEFAULTS, Claims, mapped

log = logging.getLogger(__name__)

FLOW_TTL = 600
"""Seconds a user may take between the login redirect and the callback."""

HTTP_TIMEOUT = 10
"""Seconds for one request to the IdP (discovery, JWKS, token)."""

KEYS_TTL = 3600
"""How long the IdP's discovery document and JWKS are kept before they are read again
(a token signed by a key not in them triggers one early refresh)."""

MICROSOFT_HOSTS = frozenset(
    {"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"}
)
"""Authority hosts msal's instance discovery knows; any other host skips it."""

ALGORITHMS = ["RS256"]


class OidcRejected(Exception):
    """A callback the bridge refuses; ``reason`` as for SAML rejections."""

    def __init__(self, reason: str, detail: str, status: int = 403) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


@dataclass
class _Keys:
    issuer: str
    jwks: jwt.PyJWKSet
    fetched: float


_AppKey = tuple[str, str, str, str | None]
"""authority, client id, client secret, CA bundle: what an msal app is cached by."""

_apps: dict[_AppKey, msal.ConfidentialClientApplication] = {}
_keys: dict[_AppKey, _Keys] = {}
_lock = threading.Lock()


def _session(ca_bundle: str | None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_bundle or True
    return session


class OidcClient:
    """One IdP's msal app (cached per process) and its signing keys."""

    def __init__(self, idp: Idp, ca_bundle: str | None) -> None:
        self.idp = idp
        self.ca_bundle = ca_bundle
        self.authority = idp["authority"].rstrip("/")
        self.key: _AppKey = (self.authority, idp["client_id"], idp["client_secret"], ca_bundle)

    def app(self) -> msal.ConfidentialClientApplication:
        """The IdP's msal app, built once per process and settings (discovery is costly)."""
        with _lock:
            app = _apps.get(self.key)
        if app is None:
            microsoft = urlsplit(self.authority).hostname in MICROSOFT_HOSTS
            app = msal.ConfidentialClientApplication(
                self.idp["client_id"],
                client_credential=self.idp["client_secret"],
                authority=self.authority,
                http_client=_session(self.ca_bundle),
                timeout=HTTP_TIMEOUT,
                instance_discovery=None if microsoft else False,
            )
            with _lock:
                _apps[self.key] = app
        return app

    def start(self, redirect_uri: str) -> dict[str, Any]:
        """A new flow: ``auth_uri`` to send the browser to, ``state``, nonce, verifier."""
        flow: dict[str, Any] = self.app().initiate_auth_code_flow(
            scopes=["email"], redirect_uri=redirect_uri, response_mode="form_post"
        )
        return flow

    def finish(self, flow: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        """The ID token's claims, checked by msal and then by signature; OidcRejected else."""
        try:
            result = self.app().acquire_token_by_auth_code_flow(flow, params)
        except ValueError as exc:  # state mismatch and other malformed answers
            log.info("OIDC callback refused by msal: %s", type(exc).__name__)
            raise OidcRejected("state", "the callback does not answer this sign-in") from exc
        except Exception as exc:  # noqa: BLE001 - nonce, issuer, audience, expiry, transport
            log.info("OIDC token check failed: %s", type(exc).__name__)
            raise OidcRejected("id_token", "the ID token failed msal's checks") from exc
        if "error" in result:
            log.info("OIDC token request refused by the IdP: %s", str(result["error"])[:64])
            raise OidcRejected("token", "the IdP refused to redeem the code")
        raw = result.get("id_token")
        if not raw:
            raise OidcRejected("id_token", "the IdP returned no ID token")
        return self.verify(raw)

    def verify(self, raw: str) -> dict[str, Any]:
        """The claims of an ID token signed by one of the IdP's keys, for our client id."""
        skew = int(self.idp.get("clock_skew_seconds", 120))
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError as exc:
            raise OidcRejected("id_token", "the ID token is not a JWT") from exc
        if header.get("alg") not in ALGORITHMS:
            raise OidcRejected("id_token", "the ID token is not signed with RS256")
        keys = self._keys(refresh=False)
        key = _find(keys.jwks, header.get("kid"))
        if key is None:
            keys = self._keys(refresh=True)
            key = _find(keys.jwks, header.get("kid"))
        if key is None:
            raise OidcRejected("id_token", "the ID token is signed by an unknown key")
        try:
            return jwt.decode(
                raw,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.idp["client_id"],
                issuer=keys.issuer,
                leeway=skew,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            log.info("OIDC ID token refused: %s", type(exc).__name__)
            raise OidcRejected(
                "id_token", "the ID token's signature or claims are invalid"
            ) from exc

    def _keys(self, refresh: bool) -> _Keys:
        with _lock:
            cached = _keys.get(self.key)
        if cached and not refresh and time.monotonic() - cached.fetched < KEYS_TTL:
            return cached
        session = _session(self.ca_bundle)
        try:
            config = session.get(
                f"{self.authority}/v2.0/.well-known/openid-configuration", timeout=HTTP_TIMEOUT
            ).json()
            jwks = session.get(config["jwks_uri"], timeout=HTTP_TIMEOUT).json()
            keys = _Keys(config["issuer"], jwt.PyJWKSet.from_dict(jwks), time.monotonic())
        except (requests.RequestException, ValueError, KeyError, jwt.PyJWTError) as exc:
            log.warning("cannot read the IdP's signing keys: %s", type(exc).__name__)
            raise OidcRejected("unavailable", "the IdP's signing keys cannot be read", 502) from exc
        with _lock:
            _keys[self.key] = keys
        return keys


def _find(jwks: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    for key in jwks.keys:
        if key.key_id == kid:
            return key
    return None


class Flows:
    """Pending flows in Redis, each taken once."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix

    def _key(self, idp_id: str, state: str) -> str:
        return f"{self.prefix}:sso:oidc:{idp_id}:{state}"

    def save(self, idp_id: str, flow: dict[str, Any], next_url: str | None) -> None:
        """Keep a started flow and where to go next, for FLOW_TTL seconds."""
        value = orjson.dumps({"flow": flow, "next": next_url})
        self.redis.set(self._key(idp_id, flow["state"]), value, ex=FLOW_TTL)

    def take(self, idp_id: str, state: str) -> tuple[dict[str, Any], str | None] | None:
        """The flow ``state`` names and its next URL, removed so it is used once; None if gone."""
        raw = self.redis.getdel(self._key(idp_id, state))
        if raw is None:
            return None
        saved = orjson.loads(raw)
        return saved["flow"], saved["next"]


def oidc_claims(claims: dict[str, Any], overrides: dict[str, str] | None = None) -> Claims:
    """Entra's ID token claims in the bridge's terms; ``overrides``: the IdP's claim mapping."""
    texts = {k: v for k, v in claims.items() if isinstance(v, str) and v}
    core, extra = mapped(texts, OIDC_DEFAULTS, overrides)
    user_name = core["userName"] or texts.get("upn") or texts.get("email")
    if not user_name:
        raise OidcRejected("subject", "the ID token names no user (preferred_username)")
    groups = [g for g in claims.get("groups") or [] if isinstance(g, str)]
    roles = [r for r in claims.get("roles") or [] if isinstance(r, str)]
    names = claims.get("_claim_names")
    return Claims(
        user_name=user_name,
        object_id=texts.get("oid"),
        tenant_id=texts.get("tid"),
        given_name=core["name.givenName"],
        family_name=core["name.familyName"],
        display_name=core["displayName"],
        email=core["emails"],
        groups=tuple(groups + roles),
        groups_overage=isinstance(names, dict) and "groups" in names,
        extra=extra,
    )
