"""SCIM paths as clients write them: ``/Users/``, ``/users``, ``/GROUPS/{id}/``.

RFC 7644 §3.2 names the endpoints ``/Users``, ``/Groups`` and so on, and clients vary in
case and in trailing slashes. :class:`ScimPaths` rewrites the endpoint segment after the
SCIM prefix to its canonical spelling and drops a trailing slash, before routing, so every
spelling reaches the same view and ``meta.location`` keeps the canonical one. Ids and
schema URNs after the endpoint are left as sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

SCIM_PREFIX = "/scim/v2"

ENDPOINTS = ("Users", "Groups", "Bulk", "ServiceProviderConfig", "ResourceTypes", "Schemas")
"""Endpoint segments of RFC 7644 §3.2, in their canonical case."""

_CANONICAL = {name.casefold(): name for name in ENDPOINTS}


def canonical_path(path: str) -> str:
    """``path`` with the SCIM prefix and endpoint in canonical case, without a trailing slash."""
    if path[: len(SCIM_PREFIX)].casefold() != SCIM_PREFIX:
        return path
    rest = path[len(SCIM_PREFIX) :]
    if rest and rest[0] != "/":
        return path  # /scim/v2x is some other path
    segments = rest.rstrip("/").split("/")
    if len(segments) > 1:
        segments[1] = _CANONICAL.get(segments[1].casefold(), segments[1])
    return SCIM_PREFIX + "/".join(segments)


class ScimPaths:
    """WSGI middleware applying :func:`canonical_path` to ``PATH_INFO``."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path[:2] == "/s" or path[:2] == "/S":
            environ["PATH_INFO"] = canonical_path(path)
        return self.app(environ, start_response)
