"""``flask --app app idps ...``: identity providers for just-in-time sign-in.

Calls :class:`bridge.sso.idp_admin.IdpAdmin`, as ``/admin/idps`` does. Secrets are never
taken on the command line (where ``ps`` and shell history would show them): the OIDC
client secret and the SP's private keys are read from files or standard input
(``--client-secret-file -``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson
from flask import current_app
from flask.cli import AppGroup
from marshmallow import ValidationError

from bridge.admin.cli_support import call, field_lines
from bridge.sso.idp_admin import IdpAdmin
from schemas.sso import PROTOCOLS, UPDATE_MODES, IdpChangesSchema, IdpSchema

idps_cli = AppGroup("idps", help="Manage identity providers for just-in-time sign-in.")


def admin() -> IdpAdmin:
    """The IdP service over the app's services (inside the CLI's app context)."""
    return IdpAdmin.of(current_app.extensions["bridge"])


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdin.read().strip()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc


@idps_cli.command("add")
@click.option("--name", required=True, help="Unique name; part of the sign-in URLs.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="saml", show_default=True)
@click.option("--metadata-file", help="SAML: the IdP's federation metadata XML.")
@click.option("--metadata-url", help="SAML: federation metadata URL (https), refreshed.")
@click.option("--entity-id", help="SAML: the IdP's entity id (Entra: Microsoft Entra Identifier).")
@click.option("--sso-url", help="SAML: the IdP's sign-on URL (Entra: Login URL).")
@click.option(
    "--cert-file", multiple=True, help="SAML: a signing certificate (PEM); twice to roll."
)
@click.option("--sp-entity-id", help="Our entity id (Identifier); default {base}/sso/saml/{name}.")
@click.option("--authority", help="OIDC: https://login.microsoftonline.com/{tenant}/v2.0")
@click.option("--client-id", help="OIDC: the app registration's client id.")
@click.option("--client-secret-file", help="OIDC: file holding the client secret ('-': stdin).")
@click.option("--tenant-id", help="Accept sign-ins from this tenant (tid) only.")
@click.option("--allow-redirect", multiple=True, help="A URL a sign-in may go on to (repeat).")
@click.option("--idp-initiated", is_flag=True, help="Accept IdP-initiated SAML responses.")
@click.option("--update", type=click.Choice(UPDATE_MODES), default="each_login", show_default=True)
@click.option("--no-match-username", is_flag=True, help="Never link an existing user by userName.")
@click.option("--clock-skew", type=int, default=120, show_default=True, help="Seconds.")
@click.option("--groups", is_flag=True, help="The groups claim adds memberships.")
@click.option("--sign-requests", is_flag=True, help="SAML: sign AuthnRequests.")
@click.option("--sp-signing-key-file", help="SAML: our signing key (PEM; '-': stdin).")
@click.option("--sp-signing-cert-file", help="SAML: our signing certificate (PEM).")
@click.option("--sp-encryption-key-file", help="SAML: our decryption key (PEM; '-': stdin).")
@click.option("--sp-encryption-cert-file", help="SAML: the certificate the IdP encrypts to.")
@click.option("--require-encryption", is_flag=True, help="SAML: refuse plain assertions.")
def add_idp(**o: Any) -> None:
    """Add an identity provider."""
    data: dict[str, Any] = {
        "name": o["name"],
        "protocol": o["protocol"],
        "allowed_redirects": list(o["allow_redirect"]),
        "idp_initiated": o["idp_initiated"],
        "update": o["update"],
        "match_username": not o["no_match_username"],
        "clock_skew_seconds": o["clock_skew"],
        "groups": o["groups"],
        "sign_requests": o["sign_requests"],
        "require_encryption": o["require_encryption"],
    }
    optional = {
        "metadata_xml": _read(o["metadata_file"]),
        "metadata_url": o["metadata_url"],
        **_key_files(o),
        "entity_id": o["entity_id"],
        "sso_url": o["sso_url"],
        "sp_entity_id": o["sp_entity_id"],
        "authority": o["authority"],
        "client_id": o["client_id"],
        "client_secret": _read(o["client_secret_file"]),
        "tenant_id": o["tenant_id"],
    }
    data.update({k: v for k, v in optional.items() if v})
    if o["cert_file"]:
        data["certificates"] = [_read(p) for p in o["cert_file"]]
    try:
        loaded = IdpSchema().load(data)
    except ValidationError as exc:
        details = "".join(f"\n  {line}" for line in field_lines(exc.messages))
        raise click.ClickException("invalid identity provider" + details) from exc
    idp = call(admin().create, loaded)
    click.echo(f"added {idp['name']} ({idp['id']})")
    if "sp" in idp:
        click.echo(f"  Identifier (Entity ID): {idp['sp']['entity_id']}")
        click.echo(f"  Reply URL (ACS):        {idp['sp']['acs_url']}")


@idps_cli.command("list")
def list_idps() -> None:
    """List identity providers."""
    click.echo("name\tid\tprotocol\tupdate\tidp_initiated\tgroups")
    for i in admin().all():
        click.echo(
            f"{i['name']}\t{i['id']}\t{i['protocol']}\t{i.get('update')}\t"
            f"{'yes' if i.get('idp_initiated') else 'no'}\t{'yes' if i.get('groups') else 'no'}"
        )


@idps_cli.command("show")
@click.argument("idp")
def show_idp(idp: str) -> None:
    """Show an identity provider (without secrets)."""
    click.echo(orjson.dumps(call(admin().show, idp), option=orjson.OPT_INDENT_2).decode())


@idps_cli.command("remove")
@click.argument("idp")
@click.confirmation_option(prompt="Remove the identity provider? Its sign-ins stop at once.")
def remove_idp(idp: str) -> None:
    """Remove an identity provider."""
    call(admin().delete, idp)
    click.echo(f"removed {idp}")


@idps_cli.command("metadata")
@click.argument("idp")
def idp_metadata(idp: str) -> None:
    """Print our SAML SP metadata for IDP (needs BRIDGE_PUBLIC_URL)."""
    click.echo(call(admin().metadata, idp).decode(), nl=False)


@idps_cli.command("refresh")
@click.argument("idp", required=False)
def refresh_idp(idp: str | None) -> None:
    """Read federation metadata again from its URL: IDP, or every IdP that has one (for
    cron; exits 1 when one failed, keeping what it had)."""
    if idp:
        view = call(admin().refresh, idp)
        click.echo(f"{view['name']}: {'changed' if view['changed'] else 'unchanged'}")
        return
    outcomes = admin().refresh_all()
    for name, outcome in outcomes:
        click.echo(f"{name}: {outcome}")
    if not outcomes:
        click.echo("no identity provider has a metadata URL")
    if any(outcome.startswith("failed") for _, outcome in outcomes):
        raise SystemExit(1)


def _key_files(o: dict[str, Any]) -> dict[str, str | None]:
    """The SP key and certificate options, read from their files."""
    return {
        "sp_signing_key": _read(o["sp_signing_key_file"]),
        "sp_signing_certificate": _read(o["sp_signing_cert_file"]),
        "sp_encryption_key": _read(o["sp_encryption_key_file"]),
        "sp_encryption_certificate": _read(o["sp_encryption_cert_file"]),
    }


@idps_cli.command("update")
@click.argument("idp")
@click.option("--metadata-file", help="SAML: new federation metadata (entity id, URL, certs).")
@click.option("--metadata-url", help="SAML: a federation metadata URL to read from now on.")
@click.option("--cert-file", multiple=True, help="SAML: the signing certificates (PEM), 1 or 2.")
@click.option("--allow-redirect", multiple=True, help="Replace the redirect allow-list.")
@click.option("--client-secret-file", help="OIDC: a new client secret ('-': stdin).")
@click.option("--update", type=click.Choice(UPDATE_MODES))
@click.option("--clock-skew", type=int, help="Seconds.")
@click.option("--idp-initiated/--no-idp-initiated", default=None)
@click.option("--groups/--no-groups", default=None)
@click.option("--sign-requests/--no-sign-requests", default=None)
@click.option("--require-encryption/--no-require-encryption", default=None)
@click.option("--sp-signing-key-file", help="SAML: a new signing key (PEM; '-': stdin).")
@click.option("--sp-signing-cert-file", help="SAML: its certificate (PEM).")
@click.option("--sp-encryption-key-file", help="SAML: a new decryption key (PEM; '-': stdin).")
@click.option("--sp-encryption-cert-file", help="SAML: its certificate (PEM).")
def update_idp(idp: str, **o: Any) -> None:
    """Change an identity provider, e.g. both certificates during a rollover."""
    changes: dict[str, Any] = {}
    if o["metadata_file"]:
        changes["metadata_xml"] = _read(o["metadata_file"])
    if o["cert_file"]:
        changes["certificates"] = [_read(p) for p in o["cert_file"]]
    if o["allow_redirect"]:
        changes["allowed_redirects"] = list(o["allow_redirect"])
    if o["client_secret_file"]:
        changes["client_secret"] = _read(o["client_secret_file"])
    if o["metadata_url"]:
        changes["metadata_url"] = o["metadata_url"]
    changes.update({k: v for k, v in _key_files(o).items() if v})
    for option, field in (
        ("update", "update"),
        ("clock_skew", "clock_skew_seconds"),
        ("idp_initiated", "idp_initiated"),
        ("groups", "groups"),
        ("sign_requests", "sign_requests"),
        ("require_encryption", "require_encryption"),
    ):
        if o[option] is not None:
            changes[field] = o[option]
    if not changes:
        raise click.UsageError("nothing to change")
    try:
        loaded = IdpChangesSchema().load(changes)
    except ValidationError as exc:
        details = "".join(f"\n  {line}" for line in field_lines(exc.messages))
        raise click.ClickException("invalid change" + details) from exc
    call(admin().update, idp, loaded)
    click.echo(f"updated {idp}")
