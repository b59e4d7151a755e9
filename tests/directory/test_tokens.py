"""SCIM bearer tokens: created and revoked by the CLI, stored only as digests."""

from __future__ import annotations

from app import create_app
from bridge.directory.tokens import digest


def test_tokens_create_prints_a_token_that_authenticates(app):
    result = app.test_cli_runner().invoke(args=["tokens", "create", "--name", "entra-prod"])
    assert result.exit_code == 0, result.output
    secret = result.output.split("token: ")[1].strip()
    response = app.test_client().get(
        "/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200


def test_tokens_are_stored_as_digests_only(app, redis_client):
    _, secret = app.extensions["bridge"].tokens.create("x")
    stored = redis_client.hkeys("bridge:tokens")
    assert stored == [digest(secret).encode()]
    assert secret.encode() not in b"".join(redis_client.hvals("bridge:tokens"))


def test_tokens_list_shows_names_not_secrets(app):
    _, secret = app.extensions["bridge"].tokens.create("rotation-1")
    result = app.test_cli_runner().invoke(args=["tokens", "list"])
    assert "rotation-1" in result.output
    assert secret not in result.output


def test_several_tokens_work_at_once_for_rotation(app):
    tokens = app.extensions["bridge"].tokens
    old, new = tokens.create("old")[1], tokens.create("new")[1]
    client = app.test_client()
    for secret in (old, new):
        assert (
            client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"}).status_code
            == 200
        )


def test_revoked_token_is_refused(settings, redis_client):
    app = create_app(settings)
    info, secret = app.extensions["bridge"].tokens.create("gone")
    result = app.test_cli_runner().invoke(args=["tokens", "revoke", info.id])
    assert result.exit_code == 0
    fresh = create_app(settings)  # another process: no cached verification
    response = fresh.test_client().get(
        "/scim/v2/Users", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 401


def test_revoking_an_unknown_token_fails(app):
    result = app.test_cli_runner().invoke(args=["tokens", "revoke", "nope"])
    assert result.exit_code != 0
