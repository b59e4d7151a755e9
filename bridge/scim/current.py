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


def base_url() -> str:
    """The SCIM base URL that ``meta.location`` starts with: BRIDGE_PUBLIC_URL's, else the
    request's own."""
    configured = current_app.config["BRIDGE_SETTINGS"].public_base_url
    return f"{configured}/scim/v2" if configured else request.url_root.rstrip("/") + "/scim/v2"


def resource_service(type_id: str) -> ResourceService:
    """The create/read/replace/patch/delete operations of one resource type."""
    s = services()
    return ResourceService(s.directory, s.resource_types[type_id])
