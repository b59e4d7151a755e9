"""Secret options of the CLI: never on the command line; a file, standard input, an
environment variable or a hidden prompt instead (bridge.admin.cli_support.Secret)."""

from __future__ import annotations

from tests.admin.test_cli import run


def add_crm(app, *extra: str, input: str | None = None, env: dict | None = None):
    return run(
        app, "targets", "add", "--name", "crm", "--kind", "scim",
        "--url", "https://crm.example.com/scim/v2", *extra, input=input, env=env,
    )  # fmt: skip


def stored_token(app) -> str | None:
    targets = app.extensions["bridge"].targets.all()
    return targets[0].auth.get("token") if targets else None


def test_a_secret_written_on_the_command_line_is_refused(app):
    result = add_crm(app, "--bearer-token", "tok-on-argv")
    assert result.exit_code == 2
    assert "--bearer-token-file" in result.output and "BRIDGE_CLI_BEARER_TOKEN" in result.output
    assert app.extensions["bridge"].targets.all() == []


def test_a_secret_is_read_from_a_file_without_its_newline(app, tmp_path):
    path = tmp_path / "token"
    path.write_text("tok-from-file\n")
    assert add_crm(app, "--bearer-token-file", str(path)).exit_code == 0
    assert stored_token(app) == "tok-from-file"


def test_a_dash_reads_the_secret_from_standard_input(app):
    assert add_crm(app, "--bearer-token-file", "-", input="tok-from-stdin\n").exit_code == 0
    assert stored_token(app) == "tok-from-stdin"


def test_the_option_alone_asks_for_the_secret_without_echoing_it(app):
    result = add_crm(app, "--bearer-token", input="tok-typed\n")
    assert result.exit_code == 0, result.output
    assert stored_token(app) == "tok-typed"
    assert "tok-typed" not in result.output


def test_a_secret_is_read_from_its_environment_variable_and_says_so(app):
    result = add_crm(app, env={"BRIDGE_CLI_BEARER_TOKEN": "tok-from-env"})
    assert result.exit_code == 0, result.output
    assert stored_token(app) == "tok-from-env"
    assert "from $BRIDGE_CLI_BEARER_TOKEN" in result.stderr
    assert "tok-from-env" not in result.output


def test_an_empty_secret_file_is_refused(app, tmp_path):
    path = tmp_path / "empty"
    path.write_text("\n")
    result = add_crm(app, "--bearer-token-file", str(path))
    assert result.exit_code == 2
    assert "is empty" in result.output


def test_an_unreadable_secret_file_is_refused(app, tmp_path):
    result = add_crm(app, "--bearer-token-file", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_the_prompt_and_a_file_together_are_refused(app, tmp_path):
    path = tmp_path / "token"
    path.write_text("tok")
    result = add_crm(app, "--bearer-token", "--bearer-token-file", str(path))
    assert result.exit_code == 2
    assert "either --bearer-token or --bearer-token-file" in result.output


def test_every_secret_option_refuses_a_value_on_the_command_line(app):
    for option in ("--oauth-client-secret", "--signing-secret"):
        result = add_crm(app, option, "on-argv")
        assert result.exit_code == 2, option
        assert f"{option}-file" in result.output
