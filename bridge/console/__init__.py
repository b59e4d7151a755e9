"""The admin web console at /console: server-rendered pages over the admin services.

Sign-in with an admin token (roles ``admin`` and ``viewer``), CSRF on every form, pages for
the overview, targets, the directory and each resource's trace, the SCIM request log,
resyncs and tokens. See :mod:`bridge.console.web` for the edge (sessions, CSRF, roles).
"""

from __future__ import annotations

from flask import Flask

from bridge.runtime.services import Services


def init_app(app: Flask, services: Services) -> None:
    """Register the console's blueprint and its state on ``app``."""
    from bridge.console import actions, pages  # noqa: F401 - they add their routes to blp
    from bridge.console.web import EXTENSION_KEY, blp, init_state

    app.extensions[EXTENSION_KEY] = init_state(services)
    app.register_blueprint(blp)
