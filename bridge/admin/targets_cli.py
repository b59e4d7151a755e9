"""``bridge targets ...`` (or ``flask --app app targets ...``): targets and their deliveries.

Commands call :class:`bridge.admin.targets.TargetAdmin`, as the /admin API does; ``add``
and ``update`` take every field of the API's target (``schemas.admin.TargetSchema``).
Secrets (bearer token, OAuth client secret, webhook signing secret) are never taken on the
command line: see :class:`bridge.admin.cli_support.Secret`. The one thing only the CLI
shows is a webhook signing secret it generated, printed once. Lists print a header row,
or ``none``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from flask import current_app
from marshmallow import Schema, ValidationError

from bridge.admin.cli_support import (
    BridgeGroup,
    Secret,
    call,
    echo_json_lines,
    echo_table,
    field_lines,
)
from bridge.admin.targets import TargetAdmin
from bridge.targets.model import DEPROVISION_MODES, SECRET_FIELDS
from bridge.targets.signing import new_secret
from schemas.admin import KINDS, ReplaySchema, TargetChangesSchema, TargetSchema

targets_cli = BridgeGroup("targets", help="Manage delivery targets and their deliveries.")

F = TypeVar("F", bound=Callable[..., Any])

BEARER_TOKEN = Secret("bearer-token", "BRIDGE_CLI_BEARER_TOKEN", "the target's bearer token")
CLIENT_SECRET = Secret(
    "oauth-client-secret", "BRIDGE_CLI_OAUTH_CLIENT_SECRET", "the OAuth2 client secret"
)
SIGNING_SECRET = Secret(
    "signing-secret", "BRIDGE_CLI_SIGNING_SECRET", "the webhook signing secret (whsec_…)"
)
AUTH_TYPES = ("none", "bearer", "oauth2")


def admin() -> TargetAdmin:
    """The target service over the app's services."""
    return TargetAdmin.of(current_app.extensions["bridge"])


def _load(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(data)
        return loaded
    except ValidationError as exc:
        details = "".join(f"\n  {line}" for line in field_lines(exc.messages))
        raise click.ClickException("invalid target" + details) from exc


def _items(items: tuple[str, ...]) -> list[str] | None:
    """The items named on the command line, or None for all."""
    if not items:
        return None
    chosen: list[str] = _load(ReplaySchema(), {"items": list(items)})["items"]
    return chosen


def _read_mapping(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        mapping: dict[str, Any] = json.loads(Path(path).read_text())
        return mapping
    except ValueError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from exc


def _shape_options(command: F) -> F:
    """The options ``add`` and ``update`` share: every non-secret field of a target."""
    for option in reversed(
        (
            click.option("--url", help="Webhook endpoint, or the target's SCIM base URL."),
            click.option("--auth", "auth_type", type=click.Choice(AUTH_TYPES), help="How the bridge authenticates (default: from the options given)."),
            BEARER_TOKEN.options,
            click.option("--oauth-token-url", help="OAuth2 client-credentials token endpoint."),
            click.option("--oauth-client-id"),
            CLIENT_SECRET.options,
            click.option("--oauth-scope"),
            click.option("--resources", help="users, groups or users,groups (default)."),
            click.option("--scope-all", is_flag=True, help="Everyone in the directory."),
            click.option("--scope-groups", help="Only members of these groups (comma-separated ids)."),
            click.option("--scope-filter", help='Only users matching a SCIM filter, e.g. department eq "IT".'),
            click.option("--deprovision", type=click.Choice(DEPROVISION_MODES)),
            click.option("--concurrency", type=click.IntRange(0, 64), help="Delivery jobs of this target at once (0: BRIDGE_TARGET_CONCURRENCY)."),
            click.option("--guard-max", type=click.IntRange(min=1), help="Deletion guard: deprovisions allowed per window before they are held."),
            click.option("--guard-window", type=click.IntRange(min=1), metavar="SECONDS", help="Deletion guard: the window, in seconds."),
            click.option("--user-mapping-file", type=click.Path(exists=True, dir_okay=False)),
            click.option("--group-mapping-file", type=click.Path(exists=True, dir_okay=False)),
            SIGNING_SECRET.options,
        )
    ):  # fmt: skip
        command = option(command)
    return command


def _scope(options: dict[str, Any]) -> dict[str, Any] | None:
    chosen = [k for k in ("scope_all", "scope_groups", "scope_filter") if options.get(k)]
    if len(chosen) > 1:
        raise click.UsageError("use one of --scope-all, --scope-groups, --scope-filter")
    if options.get("scope_groups"):
        groups = [g.strip() for g in options["scope_groups"].split(",") if g.strip()]
        return {"type": "groups", "groups": groups}
    if options.get("scope_filter"):
        return {"type": "filter", "filter": options["scope_filter"]}
    return {"type": "all"} if options.get("scope_all") else None


def _auth(options: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The auth section the options ask for, over ``current`` (the stored one, on update);
    None when they change nothing. Secrets left out are kept by the store."""
    token = BEARER_TOKEN.value(options)
    secret = CLIENT_SECRET.value(options)
    oauth = {
        "token_url": options.get("oauth_token_url"),
        "client_id": options.get("oauth_client_id"),
        "scope": options.get("oauth_scope"),
    }
    given = {k: v for k, v in oauth.items() if v is not None}
    if secret:
        given["client_secret"] = secret
    if token and given:
        raise click.UsageError("use either --bearer-token or the --oauth-* options")
    kind = options.get("auth_type") or ("bearer" if token else "oauth2" if given else None)
    if kind is None:
        return None
    base = dict(current or {})
    if base.get("type") != kind:
        base = {"type": kind}
    if kind == "bearer" and token:
        base["token"] = token
    if kind == "oauth2":
        base.update(given)
    if kind == "none":
        base = {"type": "none"}
    return base


def _fields(options: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The target fields the options set (``current``: the stored target, on update)."""
    data: dict[str, Any] = {}
    if options.get("url"):
        data["url"] = options["url"]
    stored = {k: v for k, v in ((current or {}).get("auth") or {}).items() if not _secret(k)}
    auth = _auth(options, stored if current else None)
    if auth is not None:
        data["auth"] = auth
    if options.get("resources"):
        data["resources"] = [r.strip() for r in options["resources"].split(",") if r.strip()]
    scope = _scope(options)
    if scope is not None:
        data["scope"] = scope
    if options.get("deprovision"):
        data["deprovision"] = options["deprovision"]
    if options.get("concurrency") is not None:
        data["concurrency"] = options["concurrency"] or None
    if options.get("guard_max") or options.get("guard_window"):
        guard = dict((current or {}).get("deletion_guard") or {"max": 100, "window_seconds": 3600})
        guard["max"] = options.get("guard_max") or guard["max"]
        guard["window_seconds"] = options.get("guard_window") or guard["window_seconds"]
        data["deletion_guard"] = guard
    for field in ("user_mapping", "group_mapping"):
        if options.get(f"{field}_file"):
            data[field] = _read_mapping(options[f"{field}_file"])
    signing_secret = SIGNING_SECRET.value(options)
    if signing_secret:
        data["signing_secret"] = signing_secret
    return data


def _secret(name: str) -> bool:
    return any(section == "auth" and field == name for section, field in SECRET_FIELDS)


@targets_cli.command("add")
@click.option("--name", required=True, help="Unique name, used in commands and the API.")
@click.option("--kind", required=True, type=click.Choice(KINDS))
@_shape_options
@click.option("--shadow", is_flag=True, help="Log what would be sent, send nothing.")
@click.option("--disabled", is_flag=True, help="Add it disabled (nothing is sent until enabled).")
def add_target(**options: Any) -> None:
    """Add a target; a generated webhook signing secret is printed once."""
    if not options.get("url"):
        raise click.UsageError("--url is required")
    data = {"name": options["name"], "kind": options["kind"], **_fields(options)}
    data.update(shadow=options["shadow"], enabled=not options["disabled"])
    generated = None
    if options["kind"] == "webhook" and "signing_secret" not in data:
        generated = data["signing_secret"] = new_secret()
    target = call(admin().create, _load(TargetSchema(), data))
    click.echo(f"added {target['name']} ({target['id']})")
    if generated:
        _print_generated(generated)


@targets_cli.command("update")
@click.argument("target")
@click.option("--name", help="A new name.")
@click.option("--kind", type=click.Choice(KINDS))
@_shape_options
@click.option(
    "--new-signing-secret",
    is_flag=True,
    help="Generate a new webhook signing secret, printed once.",
)
@click.option("--reset-user-mapping", is_flag=True, help="Back to the default user mapping.")
@click.option("--reset-group-mapping", is_flag=True, help="Back to the default group mapping.")
@click.option("--shadow/--no-shadow", default=None, help="Only log what would be sent, or send it.")
@click.option("--enable/--disable", "enabled", default=None, help="Resume or stop deliveries.")
def update_target(target: str, **options: Any) -> None:
    """Change some of a target's settings; what is not given (secrets too) is kept."""
    service = admin()
    current = service.targets.config(call(service.resolve, target))
    data = _fields(options, current)
    for field in ("name", "kind", "shadow", "enabled"):
        if options.get(field) is not None:
            data[field] = options[field]
    for field in ("user_mapping", "group_mapping"):
        if options[f"reset_{field}"]:
            data[field] = None
    generated = None
    if options["new_signing_secret"]:
        if "signing_secret" in data:
            raise click.UsageError("use either --new-signing-secret or --signing-secret")
        generated = data["signing_secret"] = new_secret()
    if not data:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    updated = call(service.update, target, _load(TargetChangesSchema(), data))
    click.echo(f"updated {updated['name']} ({', '.join(sorted(data))})")
    if generated:
        _print_generated(generated)


def _print_generated(secret: str) -> None:
    click.echo(f"signing secret: {secret}")
    click.echo("Give it to the receiver now: it is stored encrypted and never shown again.")


@targets_cli.command("list")
def list_targets() -> None:
    """List targets with their state (secrets are never shown)."""
    rows = [
        [
            t["name"],
            t["id"],
            t["kind"],
            _yes(t.get("enabled", True)),
            _yes(t.get("shadow", False)),
            str(t["status"]["breaker"]),
            str(t["status"]["dead"]),
            str(t["status"]["held"]),
            t["url"],
        ]
        for t in admin().all()
    ]
    header = ["name", "id", "kind", "enabled", "shadow", "breaker", "dead", "held", "url"]
    echo_table(header, rows)


@targets_cli.command("show")
@click.argument("target")
def show_target(target: str) -> None:
    """Show a target's configuration and status (without secrets)."""
    click.echo(orjson.dumps(call(admin().show, target), option=orjson.OPT_INDENT_2).decode())


@targets_cli.command("test")
@click.argument("target")
def test_target(target: str) -> None:
    """Probe a target now; exit status 1 when it does not answer."""
    result = call(admin().check, target)
    if not result["ok"]:
        raise click.ClickException(f"not ok: {result['error']}")
    click.echo(f"ok (HTTP {result['status']})")


@targets_cli.command("disable")
@click.argument("target")
def disable_target(target: str) -> None:
    """Stop deliveries to a target (changes are not queued for it meanwhile)."""
    call(admin().update, target, {"enabled": False})
    click.echo(f"disabled {target}")


@targets_cli.command("enable")
@click.argument("target")
def enable_target(target: str) -> None:
    """Resume deliveries to a target (run ``targets sync`` to catch up)."""
    call(admin().update, target, {"enabled": True})
    click.echo(f"enabled {target}")


@targets_cli.command("remove")
@click.argument("target")
@click.confirmation_option(prompt="Remove the target and its delivery history?")
def remove_target(target: str) -> None:
    """Remove a target and its delivery history."""
    call(admin().delete, target)
    click.echo(f"removed {target}")


@targets_cli.command("sync")
@click.argument("target")
def sync_target(target: str) -> None:
    """Queue every user and group for a target (a full resync)."""
    click.echo(f"enqueued {call(admin().sync, target)}")


@targets_cli.command("deliveries")
@click.argument("target")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, all fields.")
def list_deliveries(target: str, limit: int, as_json: bool) -> None:
    """The target's delivery log, newest first."""
    entries = call(admin().log, target, limit)
    if as_json:
        echo_json_lines(entries)
        return
    rows = [
        [
            e["at"],
            f"{e['kind']}:{e['id']}",
            e.get("action") or "-",
            e["outcome"],
            str(e.get("status") or "-"),
            str(e.get("attempts", 0)),
            "-" if e.get("latency_ms") is None else str(round(e["latency_ms"], 1)),
            e.get("error") or "",
        ]
        for e in entries
    ]
    echo_table(["at", "item", "action", "outcome", "status", "attempts", "ms", "error"], rows)


@targets_cli.command("failed")
@click.argument("target")
def failed_deliveries(target: str) -> None:
    """List dead letters: deliveries that failed every attempt."""
    _print_parked(call(admin().parked, target, "dead"))


@targets_cli.command("replay")
@click.argument("target")
@click.argument("items", nargs=-1)
def replay_failed(target: str, items: tuple[str, ...]) -> None:
    """Send dead letters again: ITEMS (user:<id>, group:<id>), or all."""
    click.echo(f"replayed {call(admin().replay_failed, target, _items(items))}")


@targets_cli.command("held")
@click.argument("target")
def held_deliveries(target: str) -> None:
    """List deliveries held by the circuit breaker or the deletion guard."""
    _print_parked(call(admin().parked, target, "held"))


@targets_cli.command("approve")
@click.argument("target")
@click.argument("items", nargs=-1)
def approve_held(target: str, items: tuple[str, ...]) -> None:
    """Send held deliveries: ITEMS, or all."""
    click.echo(f"replayed {call(admin().approve, target, _items(items))}")


@targets_cli.command("reject")
@click.argument("target")
@click.argument("items", nargs=-1)
def reject_held(target: str, items: tuple[str, ...]) -> None:
    """Drop held deliveries without sending them: ITEMS, or all."""
    click.echo(f"discarded {call(admin().reject, target, _items(items))}")


def _print_parked(entries: list[dict[str, Any]]) -> None:
    rows = [
        [f"{e['kind']}:{e['id']}", e["reason"], str(e["attempts"]), e["at"], e.get("error") or ""]
        for e in entries
    ]
    echo_table(["item", "reason", "attempts", "at", "error"], rows)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
