"""BridgeFlask remembers whether a function is a coroutine, per function: plain hooks and
views are returned as they are, and a view's methods, bound anew per request, share one
entry."""

from __future__ import annotations

import pytest

from bridge.web.flask_app import BridgeFlask


class View:
    def get(self) -> str:
        return "ok"


def hook() -> None:
    return None


def test_a_plain_function_is_returned_as_it_is():
    app = BridgeFlask(__name__)
    assert app.ensure_sync(hook) is hook
    assert app.ensure_sync(hook) is hook


def test_methods_bound_per_request_share_one_entry():
    app = BridgeFlask(__name__)
    for _ in range(3):
        method = View().get
        assert app.ensure_sync(method) is method
    assert list(app._is_coroutine) == [View.get]


def test_a_coroutine_function_goes_to_flasks_async_support():
    app = BridgeFlask(__name__)

    async def handler() -> str:
        return "ok"

    # the bridge installs no async support, so Flask says what it would need
    with pytest.raises(RuntimeError, match="async"):
        app.ensure_sync(handler)
    assert app._is_coroutine[handler] is True
