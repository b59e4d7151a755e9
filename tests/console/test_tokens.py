"""Tokens with roles and last use: the store, the CLI and the console's Tokens page."""

from __future__ import annotations

import orjson
import pytest

from bridge.directory.tokens import ADMIN, VIEWER, digest


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def test_a_token_made_before_roles_is_an_admin(app, redis_client):
    store = app.extensions["bridge"].admin_tokens
    secret = "adm_made-before-roles"
    old = {"id": "0ld", "name": "old", "created": "2026-01-01T00:00:00Z"}
    redis_client.hset(store.key, digest(secret), orjson.dumps(old))
    assert store.identify(secret).role == ADMIN
    assert [t.role for t in store.list()] == [ADMIN]


def test_scim_tokens_have_no_role(app):
    store = app.extensions["bridge"].tokens
    info, _ = store.create("entra")
    assert info.role is None
    with pytest.raises(ValueError):
        store.create("entra", VIEWER)


def test_an_unknown_role_is_refused(app):
    with pytest.raises(ValueError, match="admin, viewer"):
        app.extensions["bridge"].admin_tokens.create("x", "owner")


def test_using_a_token_records_when(app, scim):
    assert scim.get("/Users").status_code == 200
    [info] = app.extensions["bridge"].tokens.list()
    assert info.last_used is not None and info.last_used >= info.created


def test_an_unused_token_was_never_used(app):
    app.extensions["bridge"].tokens.create("idle")
    [info] = app.extensions["bridge"].tokens.list()
    assert info.last_used is None


def test_an_unknown_token_leaves_no_trace(app, redis_client):
    store = app.extensions["bridge"].tokens
    assert store.identify("scim_nobody") is None
    assert redis_client.hlen(store.used_key) == 0


def test_cli_creates_a_viewer_token(app):
    result = run(app, "admin-tokens", "create", "--name", "auditor", "--role", "viewer")
    assert result.exit_code == 0, result.output
    assert "role: viewer" in result.output
    [info] = app.extensions["bridge"].admin_tokens.list()
    assert (info.name, info.role) == ("auditor", VIEWER)


def test_cli_refuses_an_unknown_role(app):
    result = run(app, "admin-tokens", "create", "--role", "owner")
    assert result.exit_code == 2
    assert app.extensions["bridge"].admin_tokens.list() == []


def test_cli_lists_admin_tokens_under_a_header_with_their_role(app):
    app.extensions["bridge"].admin_tokens.create("ops")
    lines = run(app, "admin-tokens", "list").output.splitlines()
    assert lines[0].split("\t") == ["id", "name", "created", "last used", "role"]
    assert lines[1].split("\t")[1:][::3] == ["ops", "admin"]
    assert lines[1].split("\t")[3] == "never"


def test_cli_lists_scim_tokens_under_a_header_without_a_role(app):
    app.extensions["bridge"].tokens.create("entra")
    lines = run(app, "tokens", "list").output.splitlines()
    assert lines[0].split("\t") == ["id", "name", "created", "last used"]


def test_cli_says_none_when_there_are_no_tokens(app):
    assert run(app, "tokens", "list").output == "none\n"
    assert run(app, "admin-tokens", "list").output == "none\n"


def test_console_lists_both_kinds_with_role_and_last_use(console, app):
    app.extensions["bridge"].tokens.create("entra-2027")
    page = console.get("/tokens").text
    assert "entra-2027" in page
    assert "badge-admin" in page
    assert "never" in page


def test_console_shows_a_new_token_once(console, app):
    response = console.post("/tokens", {"kind": "admin", "name": "auditor", "role": "viewer"})
    assert response.status_code == 201
    [made] = [t for t in app.extensions["bridge"].admin_tokens.list() if t.name == "auditor"]
    assert made.role == VIEWER
    secret = response.text.split('id="secret" class="secret">')[1].split("<")[0]
    assert secret.startswith("adm_")
    assert app.extensions["bridge"].admin_tokens.identify(secret).name == "auditor"
    assert secret not in console.get("/tokens").text
    assert response.headers["Cache-Control"] == "no-store"


def test_console_refuses_a_token_without_a_name(console):
    assert console.post("/tokens", {"kind": "scim", "name": " "}).status_code == 400


def test_console_refuses_an_unknown_kind_of_token(console):
    assert console.post("/tokens", {"kind": "root", "name": "x"}).status_code == 400


def test_console_revokes_a_token(console, app):
    info, secret = app.extensions["bridge"].tokens.create("old-entra")
    response = console.post(f"/tokens/scim/{info.id}/revoke")
    assert response.status_code == 302
    assert app.extensions["bridge"].tokens.list() == []
    assert f"Revoked token {info.id}" in console.get("/tokens").text


def test_console_says_when_a_token_to_revoke_does_not_exist(console):
    console.post("/tokens/scim/nope/revoke")
    assert "no token with id nope" in console.get("/tokens").text
