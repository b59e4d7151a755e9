"""What a SCIM view works with during a request: the app's services, the base URL, and
a resource service per resource type."""

from __future__ import annotations

from flask import current_app, request

from bridge.runtime.services import EXTENSION_KEY, Services
from bridge.scim.service import ResourceService


def services() -> Services:
    """The process's object graph, as :func:`bridge.runtime.services.init_app` attached it."""
    found: Services = current_app.extensions[EXTENSION_KEY]
    return found


BASE_URLS_KEY = "scim_base_urls"
"""Where the app keeps the base URLs it has worked out from requests (``app.extensions``)."""

MAX_BASE_URLS = 64
"""Base URLs an app remembers; the Host header is the client's, so the memo is bounded."""


def base_url() -> str:
    """The SCIM base URL that ``meta.location`` starts with: BRIDGE_PUBLIC_URL's, else the
    request's own.

    The request's own is worked out once per scheme, host and script root and remembered
    by the app: Werkzeug builds it anew (host check, IRI to URI) on every request.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    configured = app.config["BRIDGE_SETTINGS"].public_base_url
    if configured:
        return f"{configured}/scim/v2"
    environ = request.environ
    key = (
        environ.get("wsgi.url_scheme"),
        environ.get("HTTP_HOST"),
        environ.get("SERVER_NAME"),
        environ.get("SERVER_PORT"),
        environ.get("SCRIPT_NAME"),
    )
    known: dict[tuple[object, ...], str] = app.extensions.setdefault(BASE_URLS_KEY, {})
    found = known.get(key)
    if found is None:
        found = request.url_root.rstrip("/") + "/scim/v2"
        if len(known) >= MAX_BASE_URLS:
            known.clear()
        known[key] = found
    return found


def resource_service(type_id: str) -> ResourceService:
    """The create/read/replace/patch/delete operations of one resource type."""
    s = services()
    return ResourceService(s.directory, s.resource_types[type_id])
