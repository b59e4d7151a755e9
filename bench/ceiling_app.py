"""The machine's ceiling: a bare Flask endpoint doing one Redis GET.

Served by the same gunicorn settings as the bridge (``bench.ceiling_app:create_app()``),
it measures what HTTP parsing, WSGI dispatch and one Redis round trip cost on this
machine, so the SCIM figures can be read as a fraction of it.
"""

from __future__ import annotations

import os

import redis
from flask import Flask, Response

KEY = "bench:ceiling"


def create_app() -> Flask:
    app = Flask(__name__)
    client = redis.Redis.from_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        socket_timeout=5.0,
        socket_connect_timeout=5.0,
        health_check_interval=30,
    )

    @app.get("/ceiling")
    def ceiling():
        value = client.get(KEY) or b"{}"
        return Response(value, mimetype="application/json")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
