"""``bridge targets update NAME …``: every field of the admin API's target, secrets kept
unless given, the deletion guard included."""

from __future__ import annotations

import json
import re

from schemas.admin import TargetSchema
from tests.admin.test_cli import add_hook, run


def stored(app):
    (target,) = app.extensions["bridge"].targets.all()
    return target


def add_oauth_crm(app, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    result = run(
        app, "targets", "add", "--name", "crm", "--kind", "scim",
        "--url", "https://crm.example.com/scim/v2",
        "--oauth-token-url", "https://login.example.com/token?api_key=k1",
        "--oauth-client-id", "bridge", "--oauth-client-secret-file", str(secret),
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_update_changes_the_url_and_keeps_the_signing_secret(app):
    add_hook(app)
    secret = stored(app).signing_secret
    result = run(app, "targets", "update", "hook", "--url", "http://127.0.0.1:9/other")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "updated hook (url)"
    assert (stored(app).url, stored(app).signing_secret) == ("http://127.0.0.1:9/other", secret)


def test_update_sets_the_deletion_guard_and_keeps_its_other_half(app):
    add_hook(app)
    assert run(app, "targets", "update", "hook", "--guard-max", "5").exit_code == 0
    assert stored(app).config["deletion_guard"] == {"max": 5, "window_seconds": 3600}
    assert run(app, "targets", "update", "hook", "--guard-window", "60").exit_code == 0
    assert stored(app).config["deletion_guard"] == {"max": 5, "window_seconds": 60}


def test_update_of_the_oauth_scope_keeps_the_client_secret_and_the_unmasked_token_url(
    app, tmp_path
):
    add_oauth_crm(app, tmp_path)
    result = run(app, "targets", "update", "crm", "--oauth-scope", "api://crm/.default")
    assert result.exit_code == 0, result.output
    auth = stored(app).auth
    assert auth["scope"] == "api://crm/.default"
    assert auth["client_secret"] == "s3cret"
    assert auth["token_url"] == "https://login.example.com/token?api_key=k1"


def test_update_to_bearer_without_a_token_is_refused(app, tmp_path):
    add_oauth_crm(app, tmp_path)
    result = run(app, "targets", "update", "crm", "--auth", "bearer")
    assert result.exit_code == 1
    assert "auth.token" in result.output
    assert stored(app).auth["type"] == "oauth2"


def test_update_to_a_bearer_token_from_standard_input(app, tmp_path):
    add_oauth_crm(app, tmp_path)
    result = run(app, "targets", "update", "crm", "--bearer-token-file", "-", input="tok2\n")
    assert result.exit_code == 0, result.output
    assert stored(app).auth == {"type": "bearer", "token": "tok2"}


def test_update_sets_scope_resources_deprovision_concurrency_and_flags(app):
    add_hook(app)
    result = run(
        app, "targets", "update", "hook", "--name", "hook2", "--resources", "users",
        "--scope-filter", 'title eq "IT"', "--deprovision", "delete",
        "--concurrency", "3", "--shadow", "--disable",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    target = stored(app)
    assert (target.name, target.resources, target.deprovision) == ("hook2", ("users",), "delete")
    assert (target.config["scope"]["type"], target.config["scope"]["filter"]) == (
        "filter",
        'title eq "IT"',
    )
    assert (target.config["concurrency"], target.shadow, target.enabled) == (3, True, False)
    assert run(app, "targets", "update", "hook2", "--concurrency", "0").exit_code == 0
    assert stored(app).config["concurrency"] is None


def test_update_replaces_and_resets_a_mapping(app, tmp_path):
    add_hook(app)
    mapping = tmp_path / "users.json"
    mapping.write_text(json.dumps({"login": {"lower": "userName"}}))
    assert run(app, "targets", "update", "hook", "--user-mapping-file", str(mapping)).exit_code == 0
    assert stored(app).config["user_mapping"] == {"login": {"lower": "userName"}}
    assert run(app, "targets", "update", "hook", "--reset-user-mapping").exit_code == 0
    assert stored(app).config["user_mapping"] is None


def test_update_with_a_new_signing_secret_prints_it_once(app):
    add_hook(app)
    result = run(app, "targets", "update", "hook", "--new-signing-secret")
    assert result.exit_code == 0, result.output
    (secret,) = re.findall(r"whsec_[A-Za-z0-9+/=]+", result.output)
    assert stored(app).signing_secret == secret


def test_update_without_a_change_is_a_usage_error(app):
    add_hook(app)
    result = run(app, "targets", "update", "hook")
    assert result.exit_code == 2
    assert "nothing to change" in result.output


def test_update_of_an_unknown_target_is_one_line(app):
    result = run(app, "targets", "update", "nope", "--url", "http://127.0.0.1:9/x")
    assert result.exit_code == 1
    assert "no target 'nope'" in result.output


OPTION_OF_FIELD = {
    "name": "--name", "kind": "--kind", "url": "--url", "auth": "--auth",
    "signing_secret": "--signing-secret-file", "resources": "--resources",
    "user_mapping": "--user-mapping-file", "group_mapping": "--group-mapping-file",
    "scope": "--scope-filter", "deprovision": "--deprovision", "concurrency": "--concurrency",
    "enabled": "--enable", "shadow": "--shadow", "deletion_guard": "--guard-max",
}  # fmt: skip


def test_update_has_an_option_for_every_field_the_api_takes(app):
    writable = {name for name, f in TargetSchema().fields.items() if not f.dump_only}
    assert writable == set(OPTION_OF_FIELD)
    help_text = run(app, "targets", "update", "--help").output
    for option in OPTION_OF_FIELD.values():
        assert option in help_text, option
