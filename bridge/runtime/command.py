"""The ``bridge`` command: the bridge's CLI, installed with the project (pyproject.toml's
``[project.scripts]``), that finds the bridge's environment by itself.

``.venv/bin/bridge targets list`` works in a new shell, without an activated venv or
exported variables: the settings come from the environment, completed from the local
bridge's ``var/bridge.env`` (see :mod:`bridge.runtime.envfile`). It has the same commands
as ``flask --app app …``, which keeps working. A bad setting, or a Redis that cannot be
reached, is one line naming the setting (exit status 2 or 1), not a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from bridge.admin.cli_support import REDIS_DOWN, REDIS_SOURCE, unreachable
from bridge.runtime import envfile
from bridge.runtime.config import Settings

BAD_SETTING_STATUS = 2
"""Exit status of a setting that cannot be used (click's, for a usage error)."""


FLASK_OPTIONS = ("app", "env_file", "debug")
"""Options of ``flask`` that ``bridge`` has no use for."""


class BridgeCli(FlaskGroup):
    """Flask's command group over a prepared app; Redis errors of any command become one
    line naming REDIS_URL and where it came from."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; an unreachable Redis becomes a click error."""
        try:
            return super().invoke(ctx)
        except REDIS_DOWN as exc:
            raise click.ClickException(
                unreachable(ctx.ensure_object(ScriptInfo).load_app(), exc)
            ) from exc


def settings_for(environ: dict[str, str], cwd: Path) -> tuple[Settings, envfile.Found]:
    """The settings the CLI runs with, and where they came from."""
    found = envfile.resolve(environ, cwd)
    return Settings.from_env(found.values), found


def cli(settings: Settings, redis_source: str) -> BridgeCli:
    """The command group over an app built from ``settings``."""

    def make_app() -> Flask:
        """The app, built once, when a command needs it."""
        from app import create_app

        app = create_app(settings)
        app.config[REDIS_SOURCE] = redis_source
        return app

    group = BridgeCli(
        name="bridge",
        help="Operate the Entra ID SCIM bridge (targets, tokens, resyncs, status …).",
        create_app=make_app,
        add_default_commands=False,
        load_dotenv=False,
        set_debug_flag=False,
    )
    # Flask's --app, --env-file and --debug: the app and its environment are found already
    group.params = [p for p in group.params if p.name not in FLASK_OPTIONS]
    return group


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bridge`` command."""
    try:
        settings, found = settings_for(dict(os.environ), Path.cwd())
    except ValueError as exc:
        click.echo(f"bridge: bad setting: {exc}", err=True)
        sys.exit(BAD_SETTING_STATUS)
    if found.note:
        click.echo(f"bridge: {found.note}", err=True)
    cli(settings, found.redis_source).main(args=argv, prog_name="bridge")


if __name__ == "__main__":
    main()
