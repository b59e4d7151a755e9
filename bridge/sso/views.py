"""``/sso``: the sign-in endpoints, SAML 2.0 service provider and OpenID Connect client.

Every refusal is logged with its reason code (never the message's content) and answered
with a small HTML page and a 4xx status; nothing is written to the directory unless
every check passed. After a sign-in the browser goes on to ``RelayState`` / ``next``
only when it is on the IdP's allow-list (no open redirect), else to a short page.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import urlsplit

import redis
from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from bridge.errors import BridgeError, Unavailable
from bridge.runtime.services import Services
from bridge.sso import signin_audit
from bridge.sso.idp_admin import sp_metadata_of, store_of
from bridge.sso.idps import Idp, IdpNotFound
from bridge.sso.metadata_fetch import refresh_in_background
from bridge.sso.oidc import FLOW_TTL, Flows, OidcClient, OidcRejected, oidc_claims
from bridge.sso.provision import Claims, Provisioner, Refused, SignInResult, saml_claims
from bridge.sso.saml_sp import AuthnRequests, sp_urls
from bridge.sso.saml_validate import MAX_RESPONSE_BYTES, Rejected, Validator
from bridge.sso.wait import wait_for_targets

log = logging.getLogger(__name__)

blp = Blueprint("sso", __name__, url_prefix="/sso")

MAX_RELAY_STATE = 2048
"""Longest RelayState / next URL accepted."""

FORM_OVERHEAD = 8192
"""Room for the form's other fields and its encoding above the SAMLResponse itself."""


class Refusal(Exception):
    """A request refused before or around validation (unknown IdP, bad redirect, ...)."""

    def __init__(self, reason: str, detail: str, status: int = 400) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


def state() -> Services:
    """The app's services."""
    services: Services = current_app.extensions["bridge"]
    return services


def base_url() -> str:
    """The URL the bridge is reached at: BRIDGE_PUBLIC_URL, else the request's host."""
    return state().settings.public_base_url or request.host_url.rstrip("/")


def page(title: str, message: str, status: int) -> Response:
    """A small HTML page, not cached, with the text escaped."""
    t, m = html.escape(title), html.escape(message)
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{t}</title></head>"
        f"<body><h1>{t}</h1><p>{m}</p></body></html>"
    )
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def refused(
    idp_name: str,
    protocol: str,
    exc: Refusal | Rejected | Refused | OidcRejected,
    user_name: str | None = None,
) -> Response:
    """Log, audit and count a refusal by reason, and answer it with a page and its status.
    ``user_name`` only once the sign-in was validated (a refused message is not trusted)."""
    reason, detail, status = exc.reason, exc.detail, exc.status
    log.warning("sign-in refused: idp=%s reason=%s (%s)", _safe(idp_name), reason, detail)
    sign_in = signin_audit.SignIn(
        _safe(idp_name),
        protocol,
        "refused",
        status,
        reason=reason,
        user_name=user_name,
        known_idp=reason != "unknown_idp",
    )
    signin_audit.record(current_app, store_of(state()), sign_in)
    return page("Sign-in refused", f"The sign-in was refused ({reason}): {detail}.", status)


def _safe(name: str) -> str:
    """An IdP name from the URL as it may be logged: printable, at most 64 characters."""
    return "".join(c if c.isprintable() else "?" for c in name[:64])


def load_idp(name: str, protocol: str) -> Idp:
    """The enabled IdP of this name and protocol; Refusal (404) else."""
    try:
        idp = store_of(state()).get(name)
    except IdpNotFound as exc:
        raise Refusal("unknown_idp", "no such identity provider", 404) from exc
    if idp.protocol != protocol or not idp.get("enabled", True):
        raise Refusal("unknown_idp", f"no such {protocol} identity provider", 404)
    if idp.get("metadata_url"):
        # federation metadata older than its interval: read again, in the background
        refresh_in_background(store_of(state()), idp.config, state().settings.graph.ca_bundle)
    return idp


def allowed_redirect(url: str | None, allow_list: list[str]) -> bool:
    """Whether ``url`` is on the allow-list: same scheme, host and port as an entry, and
    its path at or below the entry's path. No userinfo, backslashes or control characters."""
    if not url or len(url) > MAX_RELAY_STATE:
        return False
    if any(c in url for c in "\\\r\n\t") or any(ord(c) < 32 for c in url):
        return False
    try:
        got = urlsplit(url)
        port = got.port
    except ValueError:
        return False
    if got.scheme not in ("https", "http") or not got.hostname or "@" in got.netloc:
        return False
    for entry in allow_list:
        want = urlsplit(entry)
        if (want.scheme, want.hostname, want.port) != (got.scheme, got.hostname, port):
            continue
        prefix = want.path.rstrip("/")
        if not prefix or got.path == prefix or got.path.startswith(prefix + "/"):
            return True
    return False


def landing(idp: Idp, result: SignInResult, destination: str | None) -> BaseResponse:
    """Where the browser goes after a sign-in."""
    if destination:
        response = redirect(destination, code=303)
        response.headers["Cache-Control"] = "no-store"
        return response
    return page(
        "You are provisioned", "You are signed in and provisioned. You may close this page.", 200
    )


UNAVAILABLE = Refusal("unavailable", "the bridge cannot reach Redis, retry", 503)
UNEXPECTED = Refusal("malformed", "the sign-in could not be processed", 400)
IDP_UNREACHABLE = Refusal("unavailable", "the identity provider cannot be reached", 502)


# --- SAML ---------------------------------------------------------------------------------
@blp.get("/saml/<idp_name>/metadata")
def saml_metadata(idp_name: str) -> Response:
    """Our SP metadata for this IdP: entity id and ACS (HTTP-POST)."""
    try:
        idp = load_idp(idp_name, "saml")
    except Refusal as exc:
        return page("Not found", exc.detail, exc.status)
    return Response(sp_metadata_of(base_url(), idp), mimetype="application/samlmetadata+xml")


@blp.get("/saml/<idp_name>/login")
def saml_login(idp_name: str) -> BaseResponse:
    """SP-initiated sign-in: an AuthnRequest by HTTP-Redirect, its id remembered."""
    try:
        idp = load_idp(idp_name, "saml")
        target = request.args.get("next")
        if target and not allowed_redirect(target, idp.get("allowed_redirects") or []):
            raise Refusal("redirect", "next is not an allowed URL")
        urls = sp_urls(base_url(), idp)
        location = AuthnRequests(state().redis, state().settings.key_prefix).issue(
            idp, urls, target
        )
    except Refusal as exc:
        return refused(idp_name, "saml", exc)
    except redis.RedisError:
        return refused(idp_name, "saml", UNAVAILABLE)
    response = redirect(location, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.post("/saml/<idp_name>/acs")
def saml_acs(idp_name: str) -> BaseResponse:
    """The Assertion Consumer Service (HTTP-POST binding): validate, provision, go on."""
    user_name = None
    try:
        idp = load_idp(idp_name, "saml")
        if (request.content_length or 0) > MAX_RESPONSE_BYTES + FORM_OVERHEAD:
            raise Refusal("too_large", f"SAMLResponse over {MAX_RESPONSE_BYTES} bytes", 413)
        posted = request.form.get("SAMLResponse")
        if not posted:
            raise Refusal("malformed", "no SAMLResponse in the form")
        relay = request.form.get("RelayState") or None
        if relay and not allowed_redirect(relay, idp.get("allowed_redirects") or []):
            raise Refusal("redirect", "RelayState is not an allowed URL")
        s = state()
        prefix = s.settings.key_prefix
        validator = Validator(
            idp, sp_urls(base_url(), idp), AuthnRequests(s.redis, prefix), s.redis, prefix
        )
        identity = validator.validate(posted)
        claims = saml_claims(identity.name_id, identity.attributes, idp.get("claim_mapping"))
        user_name = claims.user_name
        result = provision(idp, claims, identity.name_id)
    except (Refusal, Rejected, Refused) as exc:
        return refused(idp_name, "saml", exc, user_name)
    except (redis.RedisError, Unavailable):
        return refused(idp_name, "saml", UNAVAILABLE, user_name)
    except Exception:  # noqa: BLE001 - a sign-in never ends in a 500
        log.exception("sign-in failed unexpectedly: idp=%s", _safe(idp_name))
        return refused(idp_name, "saml", UNEXPECTED, user_name)
    return landing(idp, result, relay)


def provision(idp: Idp, claims: Claims, name_id: str) -> SignInResult:
    """Create or update the user; every outcome logged (who, which IdP, what happened)."""
    s = state()
    provisioner = Provisioner(s.directory, s.resource_types, s.redis, s.settings.key_prefix)
    try:
        result = provisioner.provision(idp, claims, name_id)
    except Unavailable:
        raise
    except BridgeError as exc:
        raise Refused("invalid_user", exc.message or "the directory refused the user", 400) from exc
    wait = float(idp.get("wait_seconds") or 0)
    delivered = None
    if wait > 0 and result.action == "created":
        try:
            delivered = wait_for_targets(
                s.directory, s.deliveries, s.targets, s.resource_types["User"], result.user_id, wait
            )
        except Exception as exc:  # noqa: BLE001 - the user is provisioned: go on regardless
            log.warning("waiting for the targets failed: %s", type(exc).__name__)
            delivered = False
    signin_audit.record(
        current_app,
        store_of(s),
        signin_audit.SignIn(
            idp.name,
            idp.protocol,
            result.action,
            200,
            user_id=result.user_id,
            user_name=claims.user_name,
        ),
    )
    log.info(
        "sign-in: idp=%s user=%s action=%s groups_added=%d groups_removed=%d delivered=%s",
        idp.name,
        result.user_id,
        result.action,
        len(result.groups_added),
        len(result.groups_removed),
        "-" if delivered is None else ("yes" if delivered else "not yet"),
    )
    return result


# --- OpenID Connect -----------------------------------------------------------------------
STATE_COOKIE = "bridge_oidc_state"
"""Ties the callback to the browser that started the sign-in (no login CSRF). The IdP
posts the callback from its own site (``form_post``), so the cookie is ``SameSite=None``
and therefore ``Secure``: OIDC sign-in needs the bridge behind HTTPS."""


def oidc_client(idp: Idp) -> OidcClient:
    """The IdP's OIDC client, trusting the bundle Graph calls use."""
    return OidcClient(idp, state().settings.graph.ca_bundle)


def callback_url(idp: Idp) -> str:
    """The redirect URI registered with the IdP for its callback."""
    return f"{base_url()}/sso/oidc/{idp.name}/callback"


@blp.get("/oidc/<idp_name>/login")
def oidc_login(idp_name: str) -> BaseResponse:
    """Start the authorization code flow (state, nonce, PKCE by msal); the flow waits in Redis."""
    try:
        idp = load_idp(idp_name, "oidc")
        target = request.args.get("next")
        if target and not allowed_redirect(target, idp.get("allowed_redirects") or []):
            raise Refusal("redirect", "next is not an allowed URL")
        flow = oidc_client(idp).start(callback_url(idp))
        Flows(state().redis, state().settings.key_prefix).save(idp.id, flow, target)
    except Refusal as exc:
        return refused(idp_name, "oidc", exc)
    except redis.RedisError:
        return refused(idp_name, "oidc", UNAVAILABLE)
    except Exception as exc:  # noqa: BLE001 - the IdP's discovery failed
        log.warning("OIDC login could not start: idp=%s (%s)", _safe(idp_name), type(exc).__name__)
        return refused(idp_name, "oidc", IDP_UNREACHABLE)
    response = redirect(flow["auth_uri"], code=302)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        STATE_COOKIE,
        flow["state"],
        max_age=FLOW_TTL,
        path=f"/sso/oidc/{idp.name}/",
        secure=True,
        httponly=True,
        samesite="None",
    )
    return response


@blp.post("/oidc/<idp_name>/callback")
def oidc_callback(idp_name: str) -> BaseResponse:
    """The IdP's form_post answer: redeem the code (msal), check the ID token (msal and the
    JWKS), provision, go on."""
    user_name = None
    try:
        idp = load_idp(idp_name, "oidc")
        answer = request.form.to_dict()
        got = answer.get("state") or ""
        if not got or request.cookies.get(STATE_COOKIE) != got:
            raise Refusal("state", "the callback was not started by this browser", 403)
        pending = Flows(state().redis, state().settings.key_prefix).take(idp.id, got)
        if pending is None:
            raise Refusal("state", "no open sign-in has this state (expired or used)", 403)
        flow, target = pending
        if answer.get("error"):
            raise Refusal("idp_error", "the identity provider did not sign the user in", 403)
        token_claims = oidc_client(idp).finish(flow, answer)
        claims = oidc_claims(token_claims, idp.get("claim_mapping"))
        user_name = claims.user_name
        result = provision(idp, claims, token_claims.get("sub", ""))
    except (Refusal, OidcRejected, Refused) as exc:
        return refused(idp_name, "oidc", exc, user_name)
    except (redis.RedisError, Unavailable):
        return refused(idp_name, "oidc", UNAVAILABLE, user_name)
    except Exception:  # noqa: BLE001 - a sign-in never ends in a 500
        log.exception("OIDC sign-in failed unexpectedly: idp=%s", _safe(idp_name))
        return refused(idp_name, "oidc", UNEXPECTED, user_name)
    response = landing(idp, result, target)
    response.delete_cookie(STATE_COOKIE, path=f"/sso/oidc/{idp.name}/")
    return response
