"""Security headers on every response, and no body headers on bodiless ones."""

from __future__ import annotations

from flask import Flask, Request, Response, current_app, request

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
    headers["X-Content-Type-Options"] = "nosniff"
    if req.path.startswith(PRIVATE_PREFIXES):
        headers["Cache-Control"] = "no-store"
    public = current_app.config["BRIDGE_SETTINGS"].public_base_url
    if req.is_secure or public.startswith("https://"):
        headers["Strict-Transport-Security"] = HSTS
    if response.status_code in BODILESS:
        # RFC 9110 §15.3.5: a 204 has no content, so it has no Content-Type either.
        headers.pop("Content-Type", None)
    if "Server" in headers:  # the WSGI server may add its own; the app adds none
        del headers["Server"]  # (Headers.pop of a missing key raises and catches inside)
    return response
