"""The CLI's edge, shared by the command groups (``targets``, ``resync``, ``idps`` …).

- :func:`call` runs an admin operation: a domain error becomes a one-line click error
  (exit status 1), field errors one per line.
- :class:`BridgeGroup` is a command group whose commands answer an unreachable Redis with
  one line naming ``REDIS_URL`` (and where it came from), not a traceback.
- :func:`echo_table` prints a list command's rows under a header row, or ``none``;
  :func:`echo_json_lines` prints them as one JSON object per line (``--json``).
- :class:`Secret` is a secret option that never has to be written on the command line,
  where ``ps`` and the shell's history would show it. It is read from, in this order:

  1. ``--NAME-file PATH`` (``-`` reads standard input: ``pass show crm | bridge …``);
  2. ``--NAME`` given alone: a hidden prompt;
  3. an environment variable (``BRIDGE_CLI_…``), announced on standard error.

  A value written after ``--NAME`` is refused with a message that says how to pass it.

Adopting it in a command::

    TOKEN = Secret("bearer-token", "BRIDGE_CLI_BEARER_TOKEN", "the token the target expects")

    @group.command("add")
    @TOKEN.options
    def add(**options: Any) -> None:
        token = TOKEN.value(options)  # the secret, or None when none was given
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import orjson
import redis
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo

from bridge.errors import BridgeError, Unavailable
from bridge.observability.masking import mask_url

F = TypeVar("F", bound=Callable[..., Any])

REDIS_SOURCE = "BRIDGE_REDIS_SOURCE"
"""``app.config`` key: where the app's REDIS_URL came from, for the unreachable message
(the ``bridge`` command sets it; ``flask --app app`` leaves the default, ``REDIS_URL``)."""

ASK = "\x00ask"
"""What ``--NAME`` given alone stands for: ask for the secret with a hidden prompt."""

STDIN = "-"
"""``--NAME-file -``: read the secret from standard input."""


def call(operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an admin operation; its errors become click errors, field errors one per line."""
    try:
        return operation(*args, **kwargs)
    except Unavailable as exc:
        raise click.ClickException(unreachable(current_app, exc)) from exc
    except BridgeError as exc:
        details = "".join(f"\n  {line}" for line in field_lines(exc.details or {}))
        raise click.ClickException(exc.message + details) from exc


def echo_table(header: list[str], rows: list[list[str]]) -> None:
    """Tab-separated ``rows`` under a ``header`` row; ``none`` when there are none."""
    if not rows:
        click.echo("none")
        return
    for row in [header, *rows]:
        click.echo("\t".join(row))


def echo_json_lines(entries: list[dict[str, Any]]) -> None:
    """Each entry as one JSON object on a line of its own, every field."""
    for entry in entries:
        click.echo(orjson.dumps(entry).decode())


def field_lines(messages: Any, where: str = "") -> list[str]:
    """Nested marshmallow messages as ``field.sub: message`` lines."""
    if isinstance(messages, dict):
        return [
            line
            for key, value in messages.items()
            for line in field_lines(value, f"{where}.{key}" if where else str(key))
        ]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{where}: {m}" for m in messages]
    return [f"{where}: {messages}"]


REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, Unavailable)
"""What an unreachable (or refusing) Redis raises under a command."""


def unreachable(app: Flask, exc: BaseException) -> str:
    """One line: which Redis could not be reached, the setting that names it, why."""
    settings = app.config.get("BRIDGE_SETTINGS")
    url = mask_url(settings.redis_url) if settings else "?"
    source = app.config.get(REDIS_SOURCE, "REDIS_URL")
    cause = exc.__cause__ if isinstance(exc, Unavailable) and exc.__cause__ else exc
    reason = str(cause).strip().rstrip(".") or type(cause).__name__
    return f"cannot reach Redis at {url} ({source}): {reason}. Is the bridge running?"


class BridgeGroup(AppGroup):
    """An AppGroup whose commands report an unreachable Redis in one line (exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; Redis connection errors become a click error."""
        try:
            return super().invoke(ctx)
        except REDIS_DOWN as exc:
            info = ctx.find_object(ScriptInfo)
            if info is None:
                raise
            raise click.ClickException(unreachable(info.load_app(), exc)) from exc


@dataclass(frozen=True)
class Secret:
    """A secret option: ``--NAME-file PATH|-``, ``--NAME`` alone (prompt), or ``envvar``."""

    name: str
    envvar: str
    help: str

    @property
    def key(self) -> str:
        """The option's parameter name (``bearer_token``)."""
        return self.name.replace("-", "_")

    def options(self, command: F) -> F:
        """Decorate a command with ``--NAME`` and ``--NAME-file``."""
        command = click.option(
            f"--{self.name}-file",
            f"{self.key}_file",
            metavar="PATH",
            type=click.Path(dir_okay=False, allow_dash=True),
            help=f"Read {self.help} from PATH ('-': standard input).",
        )(command)
        return click.option(
            f"--{self.name}",
            self.key,
            is_flag=False,
            flag_value=ASK,
            default=None,
            metavar="",
            help=f"Ask for {self.help} (hidden); or set ${self.envvar}.",
        )(command)

    def value(self, options: dict[str, Any]) -> str | None:
        """The secret the command was given, or None."""
        written, path = options.get(self.key), options.get(f"{self.key}_file")
        if written not in (None, ASK):
            raise click.UsageError(
                f"--{self.name} takes no value: a secret on the command line shows in ps and "
                f"the shell's history. Use --{self.name}-file PATH ('-' for standard input), "
                f"${self.envvar}, or --{self.name} alone to be asked for it."
            )
        if path is not None and written == ASK:
            raise click.UsageError(f"use either --{self.name} or --{self.name}-file")
        if path is not None:
            return _checked(self, _read(path), f"--{self.name}-file {path}")
        if written == ASK:
            return _checked(self, click.prompt(self.help.capitalize(), hide_input=True), "prompt")
        if os.environ.get(self.envvar):
            click.echo(f"{self.help}: from ${self.envvar}", err=True)
            return _checked(self, os.environ[self.envvar], f"${self.envvar}")
        return None


def _read(path: str) -> str:
    if path == STDIN:
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from exc


def _checked(secret: Secret, value: str, where: str) -> str:
    """The secret without surrounding whitespace (a file's newline); never empty."""
    value = value.strip()
    if not value:
        raise click.UsageError(f"{secret.help} from {where} is empty")
    return value
