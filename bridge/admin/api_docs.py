"""The admin API's documentation: flask-smorest's Swagger UI at ``/admin/docs`` and the
OpenAPI document at ``/admin/openapi.json``.

Settings: ``BRIDGE_API_DOCS`` (on by default; ``off`` serves neither page nor assets),
``BRIDGE_API_DOCS_PATH`` (``docs``: the page's path under /admin) and
``BRIDGE_SWAGGER_UI_URL`` (where the browser loads Swagger UI's scripts from; by default
the bridge serves those of the ``swagger-ui-bundle`` package itself, so nothing is loaded
from a CDN).

The page and its scripts hold no data and need no token. The OpenAPI document and every
API call do: the page asks for an admin token once (kept in the tab's sessionStorage) and
sends it as ``Authorization: Bearer`` with each request, the document's included. This
module's ``templates/swagger_ui.html`` replaces flask-smorest's for that, which is why
:func:`init_app` must run before the Api is created (Flask looks for a template in the
blueprints in the order they were registered).
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, request, send_from_directory
from flask.typing import ResponseReturnValue

from bridge.runtime.config import Settings

ASSETS = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
    }
)
"""The files of swagger-ui-bundle that the page loads."""

ASSETS_MAX_AGE = 86400
"""Seconds a browser may cache Swagger UI's scripts (they change only with the package)."""


def init_app(app: Flask, settings: Settings, url_prefix: str) -> None:
    """Configure flask-smorest's Swagger UI (before the Api is made) and serve its assets."""
    if not settings.api_docs:
        return
    blp = Blueprint("api_docs", __name__, template_folder="templates", url_prefix=url_prefix)
    path = f"/{settings.api_docs_path}"
    blp.add_url_rule(f"{path}/assets/<name>", "asset", _asset)
    app.register_blueprint(blp)
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", settings.api_docs_path)
    app.config.setdefault(
        "OPENAPI_SWAGGER_UI_URL", settings.swagger_ui_url or f"{url_prefix}{path}/assets/"
    )
    app.config.setdefault("OPENAPI_SWAGGER_UI_CONFIG", {"persistAuthorization": True})
    app.extensions["api_docs_path"] = f"{url_prefix}{path}"


def is_docs_request(app: Flask) -> bool:
    """Whether the request is for the Swagger UI page or its assets (no token needed)."""
    docs = app.extensions.get("api_docs_path")
    return bool(docs) and (request.path == docs or request.path.startswith(f"{docs}/assets/"))


def _asset(name: str) -> ResponseReturnValue:
    """One of Swagger UI's files, from the swagger-ui-bundle package."""
    if name not in ASSETS:
        abort(404)
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(str(swagger_ui_path), name, max_age=ASSETS_MAX_AGE)
