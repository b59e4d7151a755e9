"""The domain's errors, shared by every package; each edge turns them into its own answer.

::

    BridgeError (500)
     ├── Invalid (400)              the request cannot be carried out as asked
     │    └── InvalidFields (422)   field errors, as ``{field: [messages]}``
     ├── NotFound (404)
     ├── Conflict (409)             a name or value already in use, a run already going
     ├── PreconditionFailed (412)   the resource changed since the version the caller saw
     └── Unavailable (503)          Redis (or another dependency) cannot be reached: retry

The SCIM edge answers with an RFC 7644 Error body (``bridge.scim.errors.from_domain``), the
admin API with flask-smorest's JSON error (``bridge.admin.api``), the CLI with a one-line
message (``bridge.admin.cli_support``). The SCIM protocol's own errors
(:class:`bridge.scim.errors.ScimError`, with ``scimType``) are part of this family.
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Base class; ``status`` is the HTTP status an edge answers with."""

    status: int = 500

    def __init__(self, message: str = "", *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Invalid(BridgeError):
    """The request cannot be carried out as asked (a bad value, an unknown mode)."""

    status = 400


class InvalidFields(Invalid):
    """Field errors, as ``details`` = ``{field: [messages]}``."""

    status = 422


class NotFound(BridgeError):
    """What the request names does not exist."""

    status = 404


class Conflict(BridgeError):
    """The request conflicts with the current state: a name in use, a run already going."""

    status = 409


class PreconditionFailed(BridgeError):
    """The resource changed since the version the request was based on."""

    status = 412


class Unavailable(BridgeError):
    """A dependency (Redis) cannot be reached; the caller should retry."""

    status = 503


REDIS_UNAVAILABLE = "the directory is unavailable, retry later"
