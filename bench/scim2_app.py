"""scim2-server as a WSGI app for gunicorn (``bench.scim2_app:create_app()``), in memory.

The bearer token comes from ``BENCH_SCIM2_TOKEN``; ``/healthz`` answers 200 without one,
so the benchmark can tell when it is up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from tests.fakes.scim_target import scim2_application

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_app() -> WsgiApp:
    app = scim2_application(os.environ["BENCH_SCIM2_TOKEN"])

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        return app(environ, start_response)

    return serve
