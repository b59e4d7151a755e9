"""The bridge's Flask application class.

Flask asks, for every hook and view it calls, whether the function is a coroutine
(``ensure_sync``), about ten times per request; the answer never changes for a function,
so it is remembered, by the function itself (a view's bound methods are new per request).
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

from flask import Flask


class BridgeFlask(Flask):
    """Flask, with ``ensure_sync``'s answer remembered per function."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._is_coroutine: dict[Callable[..., Any], bool] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` as it is, or wrapped to run and wait when it is ``async def``."""
        key = getattr(func, "__func__", func)
        is_coroutine = self._is_coroutine.get(key)
        if is_coroutine is None:
            is_coroutine = self._is_coroutine[key] = iscoroutinefunction(func)
        return self.async_to_sync(func) if is_coroutine else func
