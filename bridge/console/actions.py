"""The console's actions (POST): the admin API's operations, behind a form each.

:func:`bridge.console.web.guard` has checked the CSRF token and the admin role before any
of these runs. Each calls the same service function as its admin API endpoint, leaves
the outcome as a notice, and redirects back to the page it came from (POST, redirect,
GET). A new token is the exception: it is shown once, on the page the POST answers with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bridge.admin.resync import ResyncAdmin
from bridge.admin.targets import TargetAdmin
from bridge.console.web import blp, current, services, sessions
from bridge.directory.stored import Kind, as_kind
from bridge.directory.tokens import ADMIN, ROLES
from bridge.errors import BridgeError, Invalid, NotFound

TOKEN_KINDS = ("scim", "admin")


def _back(endpoint: str, message: Callable[[], str], **values: Any) -> ResponseReturnValue:
    """Run the action (``message`` performs it and says what it did), leave its outcome
    for the next page, and go there."""
    try:
        text, level = message(), "ok"
    except BridgeError as exc:
        text, level = exc.message or "the action failed", "error"
    sessions().notify(current().sid, text, level)
    return redirect(url_for(endpoint, **values))


def _items() -> list[str] | None:
    """The items a form names (``kind:id``), or None for all of them."""
    chosen = request.form.getlist("item")
    return chosen or None


def _admin() -> TargetAdmin:
    return TargetAdmin.of(services())


# --- targets ----------------------------------------------------------------------------
@blp.post("/targets/<ref>/test")
def test_target(ref: str) -> ResponseReturnValue:
    """Probe the target now."""

    def run() -> str:
        result = _admin().check(ref)
        if result["ok"]:
            return f"The target answered (HTTP {result.get('status')})."
        raise _Failed(f"The target did not answer well: {result.get('error')}")

    return _back("console.target", run, ref=ref)


@blp.post("/targets/<ref>/sync")
def sync_target(ref: str) -> ResponseReturnValue:
    """Queue every user and group for the target."""
    return _back("console.target", lambda: f"Queued {_admin().sync(ref)} resources.", ref=ref)


@blp.post("/targets/<ref>/enabled")
def enable_target(ref: str) -> ResponseReturnValue:
    """Enable (``enabled=1``) or disable the target."""
    on = request.form.get("enabled") == "1"

    def run() -> str:
        _admin().update(ref, {"enabled": on})
        return "The target is enabled." if on else "The target is disabled."

    return _back("console.target", run, ref=ref)


@blp.post("/targets/<ref>/failed/replay")
def replay_failed(ref: str) -> ResponseReturnValue:
    """Send dead letters again: the ones named, or all."""

    def run() -> str:
        return f"Replaying {_admin().replay_failed(ref, _items())} dead letters."

    return _back("console.target", run, ref=ref)


@blp.post("/targets/<ref>/held/approve")
def approve_held(ref: str) -> ResponseReturnValue:
    """Release held deliveries: the ones named, or all."""

    def run() -> str:
        return f"Released {_admin().approve(ref, _items())} held deliveries."

    return _back("console.target", run, ref=ref)


@blp.post("/targets/<ref>/held/reject")
def reject_held(ref: str) -> ResponseReturnValue:
    """Drop held deliveries without sending them."""

    def run() -> str:
        return f"Dropped {_admin().reject(ref, _items())} held deliveries."

    return _back("console.target", run, ref=ref)


class _Failed(BridgeError):
    """An action that ran but did not succeed: the target answered badly (an error notice)."""

    status = 502


# --- one resource -----------------------------------------------------------------------
@blp.post("/directory/<kind>/<rid>/deliver")
def deliver_now(kind: str, rid: str) -> ResponseReturnValue:
    """Deliver the resource to every enabled target that receives its kind, now: each
    delivery converges on the current state (provisions, updates or deprovisions)."""

    def run() -> str:
        state = services()
        which = _kind(kind)
        state.directory.get(which, rid)
        sent = []
        for config in state.targets.configs():
            if config.get("enabled", True) and f"{which}s" in (
                config.get("resources") or ("users", "groups")
            ):
                state.jobs.deliver(
                    config["id"], [[which, rid]], concurrency=config.get("concurrency")
                )
                sent.append(config["name"])
        if not sent:
            return "No enabled target receives it."
        return "Queued a delivery to " + ", ".join(sorted(sent)) + "."

    return _back("console.resource", run, kind=kind, rid=rid)


@blp.post("/directory/<kind>/<rid>/reconcile")
def reconcile_now(kind: str, rid: str) -> ResponseReturnValue:
    """Reconcile the resource with Entra now (Microsoft Graph)."""

    def run() -> str:
        report = ResyncAdmin(services()).reconcile_object(_kind(kind), rid)
        drift = report.get("drift") or {}
        found = ", ".join(f"{k} {v}" for k, v in drift.items() if isinstance(v, int) and v)
        return f"Reconciled with Entra: {found or 'no drift'}."

    return _back("console.resource", run, kind=kind, rid=rid)


def _kind(kind: str) -> Kind:
    try:
        return as_kind(kind)
    except ValueError as exc:
        raise NotFound("no such kind of resource") from exc


# --- resync -----------------------------------------------------------------------------
@blp.post("/resync/start")
def start_resync() -> ResponseReturnValue:
    """Start a resync: mode, target (optional), dry run, full."""
    form = request.form

    def run() -> str:
        ResyncAdmin(services()).start(
            form.get("mode", "both"),
            form.get("target") or None,
            dry_run=form.get("dry_run") == "1",
            full=form.get("full") == "1",
        )
        return "Resync started."

    return _back("console.resync", run)


@blp.post("/resync/cancel")
def cancel_resync() -> ResponseReturnValue:
    """Ask the running resync to stop."""
    return _back("console.resync", lambda: _said(ResyncAdmin(services()).cancel, "Cancelling."))


@blp.post("/resync/confirm")
def confirm_resync() -> ResponseReturnValue:
    """Apply the deprovisions a guarded resync stopped for."""
    return _back(
        "console.resync", lambda: _said(ResyncAdmin(services()).confirm, "Deprovisions confirmed.")
    )


def _said(action: Callable[[], object], text: str) -> str:
    action()
    return text


# --- tokens -----------------------------------------------------------------------------
@blp.post("/tokens")
def create_token() -> ResponseReturnValue:
    """Create a SCIM or admin token and show it, once, on the page this answers with."""
    kind = request.form.get("kind", "")
    name = (request.form.get("name") or "").strip()[:100]
    role = request.form.get("role") or ADMIN
    if kind not in TOKEN_KINDS:
        raise Invalid("kind must be scim or admin")
    if not name:
        raise Invalid("give the token a name")
    if kind == "admin" and role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    state = services()
    store = state.admin_tokens if kind == "admin" else state.tokens
    info, secret = store.create(name, role if kind == "admin" else None)
    return render_template("console/token_created.html", kind=kind, info=info, secret=secret), 201


@blp.post("/tokens/<kind>/<token_id>/revoke")
def revoke_token(kind: str, token_id: str) -> ResponseReturnValue:
    """Revoke a token (effective everywhere within a few seconds)."""
    if kind not in TOKEN_KINDS:
        raise NotFound("no such kind of token")
    state = services()
    store = state.admin_tokens if kind == "admin" else state.tokens

    def run() -> str:
        if not store.revoke(token_id):
            raise NotFound(f"no token with id {token_id}")
        return f"Revoked token {token_id}."

    return _back("console.tokens", run)
