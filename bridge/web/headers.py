"""Security headers on every response, and no body headers on bodiless ones."""

from __future__ import annotations

from flask import Flask, Request, Response, current_app, request

from bridge.web.flask_app import header_names, put_header

HSTS = "max-age=31536000"
"""``Strict-Transport-Security`` (RFC 6797): a year of HTTPS-only for this host."""

PRIVATE_PREFIXES = ("/scim", "/admin")
"""Paths whose answers are directory data or secrets' metadata: never stored by caches."""

BODILESS = frozenset({204, 304})


def init_app(app: Flask) -> None:
    """Have every response of ``app`` pass through :func:`secure`."""
    app.after_request(secure)


def secure(response: Response) -> Response:
    """``nosniff`` everywhere, ``no-store`` under /scim and /admin, HSTS over HTTPS."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    headers = response.headers
    names = header_names(headers)
    put_header(headers, names, "X-Content-Type-Options", "nosniff")
    if req.path.startswith(PRIVATE_PREFIXES):
        put_header(headers, names, "Cache-Control", "no-store")
    public = current_app.config["BRIDGE_SETTINGS"].public_base_url
    if req.is_secure or public.startswith("https://"):
        put_header(headers, names, "Strict-Transport-Security", HSTS)
    if response.status_code in BODILESS and "content-type" in names:
        # RFC 9110 §15.3.5: a 204 has no content, so it has no Content-Type either.
        del headers["Content-Type"]
    if "server" in names:  # the WSGI server may add its own; the app adds none
        del headers["Server"]
    return response
