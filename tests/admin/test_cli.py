"""``bridge targets ...`` (``flask --app app targets ...``) and ``admin-tokens ...``."""

from __future__ import annotations

import json
import re

from bridge.directory.ids import new_id
from bridge.targets.signing import new_secret


def run(app, *args: str, input: str | None = None, env: dict | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=input, env=env)


def add_hook(app, *extra: str, input: str | None = None):
    return run(
        app, "targets", "add", "--name", "hook", "--kind", "webhook",
        "--url", "http://127.0.0.1:9/events", *extra, input=input,
    )  # fmt: skip


def test_targets_add_prints_a_generated_signing_secret_once(app, redis_client):
    result = add_hook(app)
    assert result.exit_code == 0, result.output
    secrets = re.findall(r"whsec_[A-Za-z0-9+/=]+", result.output)
    assert len(secrets) == 1
    stored = app.extensions["bridge"].targets.all()[0]
    assert stored.signing_secret == secrets[0]
    assert secrets[0].encode() not in b"".join(redis_client.hvals("bridge:targets"))


def test_targets_list_and_show_never_show_secrets(app):
    secret = new_secret()
    add_hook(app, "--signing-secret-file", "-", input=secret)
    result = run(
        app, "targets", "add", "--name", "crm", "--kind", "scim",
        "--url", "https://crm.example.com/scim/v2", "--bearer-token", input="tok-plaintext\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "whsec_" not in result.output
    listing = run(app, "targets", "list").output
    assert "hook" in listing and "crm" in listing
    shown = run(app, "targets", "show", "hook").output + run(app, "targets", "show", "crm").output
    for output in (listing, shown):
        assert secret not in output and "tok-plaintext" not in output


def test_targets_add_reports_invalid_input(app, tmp_path):
    mapping = tmp_path / "users.json"
    mapping.write_text(json.dumps({"login": "noSuchAttribute"}))
    result = add_hook(app, "--user-mapping-file", str(mapping))
    assert result.exit_code == 1
    assert "user_mapping" in result.output
    result = add_hook(app, "--scope-filter", "department eq")
    assert result.exit_code == 1
    assert "scope.filter" in result.output


def test_targets_add_takes_scope_mapping_and_oauth(app, tmp_path):
    g1, g2 = new_id(), new_id()
    mapping = tmp_path / "users.json"
    mapping.write_text(json.dumps({"login": {"lower": "userName"}}))
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("s3cret\n")
    result = run(
        app, "targets", "add", "--name", "crm", "--kind", "scim",
        "--url", "https://crm.example.com/scim/v2",
        "--oauth-token-url", "https://login.example.com/token",
        "--oauth-client-id", "bridge", "--oauth-client-secret-file", str(secret_file),
        "--resources", "users", "--scope-groups", f"{g1},{g2}", "--deprovision", "delete",
        "--shadow", "--user-mapping-file", str(mapping),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    target = app.extensions["bridge"].targets.all()[0]
    assert target.auth["type"] == "oauth2" and target.auth["client_secret"] == "s3cret"
    assert (target.resources, target.scope_groups) == (("users",), frozenset({g1, g2}))
    assert (target.deprovision, target.shadow) == ("delete", True)
    assert target.user_mapping.to_spec() == {"login": {"lower": "userName"}}


def test_targets_disable_enable_and_remove(app):
    add_hook(app)
    assert run(app, "targets", "disable", "hook").exit_code == 0
    assert app.extensions["bridge"].targets.all()[0].enabled is False
    assert run(app, "targets", "enable", "hook").exit_code == 0
    assert app.extensions["bridge"].targets.all()[0].enabled is True
    assert run(app, "targets", "remove", "hook", "--yes").exit_code == 0
    assert app.extensions["bridge"].targets.all() == []


def test_targets_test_fails_against_a_dead_port(app):
    add_hook(app)
    result = run(app, "targets", "test", "hook")
    assert result.exit_code == 1
    assert "not ok" in result.output


def test_targets_failed_and_replay(app):
    add_hook(app)
    target = app.extensions["bridge"].targets.all()[0]
    app.extensions["bridge"].deliveries.bury(target.id, "user", "u1", "HTTP 500", 4)
    listing = run(app, "targets", "failed", "hook").output.splitlines()
    assert listing[0] == "item\treason\tattempts\tat\terror"
    assert listing[1].startswith("user:u1\tfailed\t4")
    assert run(app, "targets", "replay", "hook", "user:u1").output.strip() == "replayed 1"
    assert run(app, "targets", "failed", "hook").output == "none\n"


def test_unknown_target_is_an_error(app):
    result = run(app, "targets", "show", "nope")
    assert result.exit_code == 1
    assert "no target 'nope'" in result.output


def test_admin_tokens_create_makes_a_working_admin_token(app):
    result = run(app, "admin-tokens", "create", "--name", "ops")
    assert result.exit_code == 0, result.output
    secret = result.output.split("token: ")[1].strip()
    response = app.test_client().get(
        "/admin/targets", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200
    assert "ops" in run(app, "admin-tokens", "list").output


def test_admin_tokens_revoke(settings, redis_client):
    from app import create_app

    app = create_app(settings)
    info, secret = app.extensions["bridge"].admin_tokens.create("gone")
    assert run(app, "admin-tokens", "revoke", info.id).exit_code == 0
    fresh = create_app(settings)  # another process: no cached verification
    response = fresh.test_client().get(
        "/admin/targets", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 401
