"""``flask --app app targets ...``: the operator's console for targets and deliveries.

Commands call :class:`bridge.admin.targets.TargetAdmin`, as the /admin API does. The one
thing only the console shows is a webhook signing secret it generated, printed once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import orjson
from flask import current_app
from flask.cli import AppGroup
from marshmallow import Schema, ValidationError

from bridge.admin.cli_support import call, field_lines
from bridge.admin.targets import TargetAdmin
from bridge.targets.model import DEPROVISION_MODES
from bridge.targets.signing import new_secret
from schemas.admin import KINDS, ReplaySchema, TargetSchema

targets_cli = AppGroup("targets", help="Manage delivery targets and their deliveries.")


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


def _auth(
    bearer: str | None,
    token_url: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
) -> dict[str, Any]:
    oauth = (token_url, client_id, client_secret)
    if bearer and any(oauth):
        raise click.UsageError("use either --bearer-token or the --oauth-* options")
    if bearer:
        return {"type": "bearer", "token": bearer}
    if any(oauth):
        return {
            "type": "oauth2",
            "token_url": token_url,
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
    return {"type": "none"}


def _scope(groups: str | None, filter_: str | None) -> dict[str, Any]:
    if groups and filter_:
        raise click.UsageError("use either --scope-groups or --scope-filter")
    if groups:
        return {"type": "groups", "groups": [g.strip() for g in groups.split(",") if g.strip()]}
    if filter_:
        return {"type": "filter", "filter": filter_}
    return {"type": "all"}


@targets_cli.command("add")
@click.option("--name", required=True, help="Unique name, used in commands and the API.")
@click.option("--kind", required=True, type=click.Choice(KINDS))
@click.option("--url", required=True, help="Webhook endpoint, or the target's SCIM base URL.")
@click.option("--bearer-token", help="Static bearer token the target expects.")
@click.option("--oauth-token-url", help="OAuth2 client-credentials token endpoint.")
@click.option("--oauth-client-id")
@click.option("--oauth-client-secret")
@click.option("--oauth-scope")
@click.option("--resources", default="users,groups", show_default=True)
@click.option("--scope-groups", help="Only members of these groups (comma-separated ids).")
@click.option("--scope-filter", help='Only users matching a SCIM filter, e.g. department eq "IT".')
@click.option("--deprovision", type=click.Choice(DEPROVISION_MODES), default="disable")
@click.option("--shadow", is_flag=True, help="Log what would be sent, send nothing.")
@click.option("--user-mapping-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--group-mapping-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--signing-secret", help="Webhook signing secret (whsec_…); generated if left out.")
def add_target(**options: Any) -> None:
    """Add a target; a generated webhook signing secret is printed once."""
    generated = None
    if options["kind"] == "webhook" and not options["signing_secret"]:
        generated = options["signing_secret"] = new_secret()
    data = {
        "name": options["name"],
        "kind": options["kind"],
        "url": options["url"],
        "auth": _auth(
            options["bearer_token"],
            options["oauth_token_url"],
            options["oauth_client_id"],
            options["oauth_client_secret"],
            options["oauth_scope"],
        ),
        "resources": [r.strip() for r in options["resources"].split(",") if r.strip()],
        "scope": _scope(options["scope_groups"], options["scope_filter"]),
        "deprovision": options["deprovision"],
        "shadow": options["shadow"],
        "user_mapping": _read_mapping(options["user_mapping_file"]),
        "group_mapping": _read_mapping(options["group_mapping_file"]),
    }
    if options["signing_secret"]:
        data["signing_secret"] = options["signing_secret"]
    target = call(admin().create, _load(TargetSchema(), data))
    click.echo(f"added {target['name']} ({target['id']})")
    if generated:
        click.echo(f"signing secret: {generated}")
        click.echo("Give it to the receiver now: it is stored encrypted and never shown again.")


@targets_cli.command("list")
def list_targets() -> None:
    """List targets with their state (secrets are never shown)."""
    click.echo("name\tid\tkind\tenabled\tshadow\tbreaker\tdead\theld\turl")
    for t in admin().all():
        s = t["status"]
        click.echo(
            f"{t['name']}\t{t['id']}\t{t['kind']}\t{_yes(t.get('enabled', True))}\t"
            f"{_yes(t.get('shadow', False))}\t{s['breaker']}\t{s['dead']}\t{s['held']}\t{t['url']}"
        )


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
    for e in entries:
        error = e.get("error") or ""
        click.echo(f"{e['kind']}:{e['id']}\t{e['reason']}\t{e['attempts']}\t{e['at']}\t{error}")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
