"""``flask --app app tokens ...``: manage SCIM bearer tokens."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

tokens_cli = AppGroup("tokens", help="Manage the SCIM bearer tokens Entra authenticates with.")


def _store():
    return current_app.extensions["bridge"].tokens


@tokens_cli.command("create")
@click.option("--name", default="entra", show_default=True, help="A label to recognise it by.")
def create_token(name: str) -> None:
    """Create a token and print it once (paste it into Entra's Secret Token)."""
    info, secret = _store().create(name)
    click.echo(f"id: {info.id}\nname: {info.name}\ntoken: {secret}")


@tokens_cli.command("list")
def list_tokens() -> None:
    """List tokens (ids and names; secrets are not stored)."""
    for info in _store().list():
        click.echo(f"{info.id}\t{info.name}\t{info.created}")


@tokens_cli.command("revoke")
@click.argument("token_id")
def revoke_token(token_id: str) -> None:
    """Revoke a token by id."""
    if not _store().revoke(token_id):
        raise click.ClickException(f"no token with id {token_id}")
    click.echo(f"revoked {token_id}")
