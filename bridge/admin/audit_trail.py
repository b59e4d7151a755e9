"""The SCIM audit trail for admins: ``GET /admin/audit`` and ``flask --app app audit``."""

from __future__ import annotations

from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from flask.views import MethodView
from flask_smorest import Blueprint

from bridge.admin.cli_support import echo_json_lines, echo_table
from bridge.observability.audit_log import AuditLog, parse_since
from schemas.audit import MAX_LIMIT, AuditEntrySchema, AuditQuerySchema

blp = Blueprint(
    "audit", __name__, url_prefix="/admin", description="The audit trail of SCIM requests."
)


def _log() -> AuditLog:
    from bridge.web.observe import audit_log

    return audit_log(current_app)


def _read(args: dict[str, Any]) -> list[dict[str, Any]]:
    log = _log()
    log.flush()  # this process's own last requests too
    return log.read(
        status=args.get("status"),
        resource=args.get("resource"),
        since=parse_since(args.get("since")),
        request_id=args.get("request_id"),
        limit=args.get("limit", 100),
    )


@blp.route("/audit")
class Audit(MethodView):
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEntrySchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """SCIM requests, newest first, filtered by status, resource and time."""
        return _read(args)


@click.command("audit")
@click.option("--status", help="An HTTP status (404) or class (4xx).")
@click.option("--resource", help="A resource id, a resource type (Users) or a token name.")
@click.option("--since", help="An ISO 8601 time, or an age: 30s, 15m, 2h, 1d.")
@click.option("--request-id", help="One request's id (its X-Request-Id).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, bodies too.")
@with_appcontext
def audit_cli(
    status: str | None,
    resource: str | None,
    since: str | None,
    request_id: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit trail of SCIM requests, newest first (secrets masked)."""
    errors = AuditQuerySchema().validate(
        {"status": status, "resource": resource, "since": since, "request_id": request_id}
    )
    if errors:
        raise click.BadParameter("; ".join(f"{k}: {v[0]}" for k, v in errors.items()))
    entries = _read(
        {
            "status": status,
            "resource": resource,
            "since": since,
            "request_id": request_id,
            "limit": limit,
        }
    )
    if as_json:
        echo_json_lines(entries)
        return
    rows = [
        [
            e["at"],
            e["method"],
            e["path"],
            str(e["status"]),
            str(e.get("latency_ms", "-")),
            e.get("token_name") or "-",
            e.get("client_ip") or "-",
            str(e.get("request_id")),
        ]
        for e in entries
    ]
    echo_table(["at", "method", "path", "status", "ms", "token", "client", "request id"], rows)
