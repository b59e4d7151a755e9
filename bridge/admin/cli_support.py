"""The CLI's edge: a domain error becomes a one-line click error (exit status 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bridge.errors import BridgeError


def call(operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an admin operation; its errors become click errors, field errors one per line."""
    try:
        return operation(*args, **kwargs)
    except BridgeError as exc:
        details = "".join(f"\n  {line}" for line in field_lines(exc.details or {}))
        raise click.ClickException(exc.message + details) from exc


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
