"""Every JIT sign-in in the audit trail and the metrics: who, which IdP, what became of it.

An entry goes to the SCIM audit trail (``GET /admin/audit?resource=signin``, or the IdP's
name) with ``kind: signin``, the IdP and protocol, the outcome (``created``, ``updated``,
``unchanged``, ``kept`` or ``refused``) and a refusal's reason, the user's id and
``userName`` once the sign-in was validated, the HTTP status, client IP and request id.
Never anything else of the assertion or token: a refused message's claims are not
trusted, and are not kept. The same outcome is counted in ``bridge_jit_signins_total``
and in the IdP's own counters (``stats`` of ``GET /admin/idps/{idp}``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, request

from bridge.observability import metrics, request_context
from bridge.observability.audit_log import now_iso
from bridge.sso.idps import IdpStore

log = logging.getLogger(__name__)

UNKNOWN_IDP = "-"
"""The metrics label of a sign-in at an IdP name that is not configured."""


@dataclass(frozen=True)
class SignIn:
    """What one sign-in came to."""

    idp: str
    protocol: str
    outcome: str
    status: int
    reason: str = ""
    user_id: str | None = None
    user_name: str | None = None
    known_idp: bool = True


def record(app: Flask, store: IdpStore, sign_in: SignIn) -> None:
    """Audit, count and tally one sign-in; a Redis failure costs only the IdP's tally."""
    label = sign_in.idp if sign_in.known_idp else UNKNOWN_IDP
    metrics.observe_signin(label, sign_in.outcome, sign_in.reason)
    audit = _audit_log(app)
    if audit is not None and audit.enabled:
        audit.append(entry(sign_in))
    if not sign_in.known_idp or sign_in.reason == "unavailable":
        return
    tally = f"refused:{sign_in.reason}" if sign_in.outcome == "refused" else sign_in.outcome
    try:
        store.count(sign_in.idp, tally)
    except redis.RedisError:
        log.warning("sign-in not counted: Redis unavailable")


def entry(sign_in: SignIn) -> dict[str, Any]:
    """The audit entry of a sign-in (inside its request)."""
    return {
        "at": now_iso(),
        "kind": "signin",
        "method": request.method,
        "path": request.path,
        "status": sign_in.status,
        "resource_type": "User",
        "resource_id": sign_in.user_id,
        "idp": sign_in.idp[:64],
        "protocol": sign_in.protocol,
        "outcome": sign_in.outcome,
        "reason": sign_in.reason or None,
        "user_name": sign_in.user_name,
        "client_ip": request.remote_addr,
        "request_id": request_context.current(),
    }


def _audit_log(app: Flask) -> Any:
    from bridge.web.observe import EXTENSION_KEY

    state = app.extensions.get(EXTENSION_KEY)
    return state["audit"] if state else None
