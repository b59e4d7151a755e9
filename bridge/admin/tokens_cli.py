"""``flask --app app tokens ...`` and ``admin-tokens ...``: manage bearer tokens.

SCIM tokens authenticate Entra on /scim/v2; admin tokens authenticate operators on /admin
and the web console, with a role: ``admin`` or ``viewer`` (read-only). The target
commands live in :mod:`bridge.admin.targets_cli`.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from bridge.admin.cli_support import echo_table
from bridge.directory.tokens import ADMIN, ROLES, TokenInfo, TokenStore


def token_group(name: str, attribute: str, help: str, default_label: str, use: str) -> AppGroup:
    """A ``create``/``list``/``revoke`` command group for the TokenStore at ``Services.<attribute>``."""
    group = AppGroup(name, help=help)
    with_roles = attribute == "admin_tokens"

    def store() -> TokenStore:
        """The token store the group manages."""
        found: TokenStore = getattr(current_app.extensions["bridge"], attribute)
        return found

    @group.command("create")
    @click.option(
        "--name", default=default_label, show_default=True, help="A label to recognise it by."
    )
    def create_token(name: str, role: str | None = None) -> None:
        """Create a token and print it once."""
        info, secret = store().create(name, role)
        click.echo(f"id: {info.id}\nname: {info.name}\n{_role_line(info)}token: {secret}")

    if with_roles:
        create_token = click.option(
            "--role",
            type=click.Choice(ROLES),
            default=ADMIN,
            show_default=True,
            help="viewer: read-only (the API refuses its writes; the console shows no buttons).",
        )(create_token)
    create_token.help = f"Create a token and print it once ({use})."

    @group.command("list")
    def list_tokens() -> None:
        """List tokens (ids, names, roles, last use; secrets are not stored)."""
        columns = ["id", "name", "created", "last used"] + (["role"] if with_roles else [])
        rows = [
            [info.id, info.name, info.created, info.last_used or "never"]
            + ([info.role or ADMIN] if with_roles else [])
            for info in store().list()
        ]
        echo_table(columns, rows)

    @group.command("revoke")
    @click.argument("token_id")
    def revoke_token(token_id: str) -> None:
        """Revoke a token by id."""
        if not store().revoke(token_id):
            raise click.ClickException(f"no token with id {token_id}")
        click.echo(f"revoked {token_id}")

    return group


def _role_line(info: TokenInfo) -> str:
    return f"role: {info.role}\n" if info.role else ""


tokens_cli = token_group(
    "tokens",
    "tokens",
    "Manage the SCIM bearer tokens Entra authenticates with.",
    "entra",
    "paste it into Entra's Secret Token",
)

admin_tokens_cli = token_group(
    "admin-tokens",
    "admin_tokens",
    "Manage the bearer tokens of the admin API (/admin) and the web console (/console).",
    "admin",
    "send it as 'Authorization: Bearer <token>' to /admin, or sign in to /console with it",
)
