"""The console's pages (GET): overview, targets, directory, SCIM request log, resync, tokens.

Each page reads through the same services the admin API uses (bridge.admin.*,
bridge.delivery.deliveries, bridge.directory); none writes.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue

from bridge.admin.resync import MODES, ResyncAdmin
from bridge.admin.targets import TargetAdmin
from bridge.console import status, trace
from bridge.console.web import blp, services
from bridge.directory.stored import as_kind
from bridge.errors import Invalid, NotFound
from bridge.observability.audit_log import parse_since
from bridge.observability.masking import mask_body
from bridge.web.observe import audit_log

LOG_LIMIT = 100
"""Deliveries a target's page lists."""

AUDIT_LIMIT = 100
"""SCIM requests the request log lists per page."""


def pretty(value: Any) -> str:
    """JSON for people: indented, keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


blp.add_app_template_filter(pretty, "pretty")


@blp.get("/")
def overview() -> ResponseReturnValue:
    """The overview; its panel refreshes itself (``overview_panel``)."""
    return render_template("console/overview.html", s=_snapshot())


@blp.get("/overview/panel")
def overview_panel() -> ResponseReturnValue:
    """The overview's figures alone, for the page's script to swap in."""
    return render_template("console/overview_panel.html", s=_snapshot())


def _snapshot() -> dict[str, Any]:
    return status.snapshot(services(), audit_log(current_app))


@blp.get("/targets")
def targets() -> ResponseReturnValue:
    """Every target with its status and health."""
    admin = TargetAdmin.of(services())
    rows = admin.all()
    for row in rows:
        row["health"] = status.health_of({**row, **row["status"]})
        row["pending"] = services().deliveries.pending(row["id"])
    return render_template("console/targets.html", targets=rows)


@blp.get("/targets/<ref>")
def target(ref: str) -> ResponseReturnValue:
    """One target: settings (no secrets), delivery log, dead letters, held, shadow output."""
    admin = TargetAdmin.of(services())
    shown = admin.show(ref)
    settings = {k: v for k, v in shown.items() if k != "status"}
    deliveries = admin.log(ref, LOG_LIMIT)
    return render_template(
        "console/target.html",
        t=shown,
        health=status.health_of({**shown, **shown["status"]}),
        settings=settings,
        deliveries=deliveries,
        shadow=[d for d in deliveries if d.get("outcome") == "shadow"],
        dead=admin.parked(ref, "dead"),
        held=admin.parked(ref, "held"),
        pending=services().deliveries.pending(shown["id"]),
    )


@blp.get("/directory")
def directory() -> ResponseReturnValue:
    """Search users and groups by userName, e-mail, externalId or group name."""
    query = request.args.get("q", "")
    by = request.args.get("by", "any")
    if by not in trace.SEARCH_FIELDS:
        raise Invalid(f"search by one of {', '.join(trace.SEARCH_FIELDS)}")
    found = trace.search(services().directory, query, by) if query else []
    return render_template(
        "console/directory.html", q=query, by=by, fields=trace.SEARCH_FIELDS, found=found
    )


@blp.get("/directory/<kind>/<rid>")
def resource(kind: str, rid: str) -> ResponseReturnValue:
    """One user or group: the stored resource and its trace across the targets."""
    try:
        which = as_kind(kind)
    except ValueError as exc:
        raise NotFound("no such kind of resource") from exc
    record = services().directory.get(which, rid, members=which == "group", groups=which == "user")
    group_names = {}
    if record.groups:
        group_names = {
            g.id: g.doc.get("displayName", g.id)
            for g in services().directory.get_many("group", record.groups)
        }
    return render_template(
        "console/resource.html",
        r=record,
        resource=mask_body(record.as_resource(), strings=False),
        group_names=group_names,
        rows=trace.trace(services(), record),
        graph=services().settings.graph.configured,
    )


@blp.get("/audit")
def audit() -> ResponseReturnValue:
    """The SCIM request log, newest first, filtered by status, resource and time."""
    args = {k: (request.args.get(k) or "").strip() for k in ("status", "resource", "since")}
    if args["status"] and not _is_status(args["status"]):
        raise Invalid("status is an HTTP status (404) or a class (4xx)")
    try:
        since = parse_since(args["since"] or None)
    except ValueError as exc:
        raise Invalid("since is an ISO 8601 time or an age such as 15m, 2h, 1d") from exc
    log = audit_log(current_app)
    log.flush()
    entries = log.read(
        status=args["status"] or None,
        resource=args["resource"] or None,
        since=since,
        limit=AUDIT_LIMIT,
    )
    return render_template("console/audit.html", entries=entries, args=args, enabled=log.enabled)


def _is_status(text: str) -> bool:
    return len(text) == 3 and text[0] in "12345" and (text[1:].isdigit() or text[1:] == "xx")


@blp.get("/resync")
def resync() -> ResponseReturnValue:
    """Start a resync, watch it, cancel or confirm it; recent runs."""
    configs = services().targets.configs()
    return render_template(
        "console/resync.html",
        r=ResyncAdmin(services()).status(),
        modes=MODES,
        targets=configs,
        names={c["id"]: c["name"] for c in configs},
        graph=services().settings.graph.configured,
    )


@blp.get("/resync/status.json")
def resync_status() -> ResponseReturnValue:
    """The current run's progress, for the page's script."""
    return ResyncAdmin(services()).status()


@blp.get("/tokens")
def tokens() -> ResponseReturnValue:
    """SCIM and admin tokens: names, creation, last use, roles."""
    state = services()
    return render_template(
        "console/tokens.html", scim=state.tokens.list(), admin=state.admin_tokens.list()
    )
