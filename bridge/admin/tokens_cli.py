"""``flask --app app tokens ...`` and ``admin-tokens ...``: manage bearer tokens.

SCIM tokens authenticate Entra on /scim/v2; admin tokens authenticate operators on /admin.
The target commands live in :mod:`bridge.admin.targets_cli`.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from bridge.directory.tokens import TokenStore


def token_group(name: str, attribute: str, help: str, default_label: str, use: str) -> AppGroup:
    """A ``create``/``list``/``revoke`` command group for the TokenStore at ``Services.<attribute>``."""
    group = AppGroup(name, help=help)

    def store() -> TokenStore:
        """The token store the group manages."""
        found: TokenStore = getattr(current_app.extensions["bridge"], attribute)
        return found

    @group.command("create")
    @click.option(
        "--name", default=default_label, show_default=True, help="A label to recognise it by."
    )
    def create_token(name: str) -> None:
        """Create a token and print it once."""
        info, secret = store().create(name)
        click.echo(f"id: {info.id}\nname: {info.name}\ntoken: {secret}")

    create_token.help = f"Create a token and print it once ({use})."

    @group.command("list")
    def list_tokens() -> None:
        """List tokens (ids and names; secrets are not stored)."""
        for info in store().list():
            click.echo(f"{info.id}\t{info.name}\t{info.created}")

    @group.command("revoke")
    @click.argument("token_id")
    def revoke_token(token_id: str) -> None:
        """Revoke a token by id."""
        if not store().revoke(token_id):
            raise click.ClickException(f"no token with id {token_id}")
        click.echo(f"revoked {token_id}")

    return group


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
    "Manage the bearer tokens of the admin API (/admin).",
    "admin",
    "send it as 'Authorization: Bearer <token>' to /admin",
)
