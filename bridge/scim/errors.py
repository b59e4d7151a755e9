"""SCIM errors (RFC 7644 §3.12), each carrying its HTTP status and ``scimType``.

::

    ScimError (500)
     ├── BadRequest (400)
     │    ├── InvalidFilter        scimType=invalidFilter
     │    ├── TooMany              scimType=tooMany
     │    ├── InvalidSyntax        scimType=invalidSyntax
     │    ├── InvalidPath          scimType=invalidPath
     │    ├── NoTarget             scimType=noTarget
     │    ├── InvalidValue         scimType=invalidValue
     │    ├── InvalidVersion       scimType=invalidVers
     │    ├── Mutability           scimType=mutability
     │    └── Sensitive            scimType=sensitive
     ├── Unauthorized (401)
     ├── Forbidden (403)
     ├── NotFound (404)
     ├── MethodNotAllowed (405)
     ├── Conflict (409)            scimType=uniqueness
     │    └── ConcurrentModification scimType=mutability
     ├── PreconditionFailed (412)
     ├── PayloadTooLarge (413)
     ├── UnsupportedMediaType (415)
     ├── TooManyRequests (429)     with Retry-After: a token's rate, or the relay's backlog
     ├── NotImplementedYet (501)
     └── Unavailable (503)        the directory (Redis) cannot be reached; clients retry
"""

from __future__ import annotations

from typing import Any

from bridge import errors as domain
from bridge.scim import urns

ERROR_SCHEMA = urns.ERROR


class ScimError(domain.BridgeError):
    """Base class: an error that becomes a SCIM Error response."""

    status: int = 500
    scim_type: str | None = None

    def __init__(self, detail: str = "", *, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if scim_type is not None:
            self.scim_type = scim_type

    def to_scim(self) -> dict[str, Any]:
        """The RFC 7644 §3.12 body; ``status`` is a string as the RFC's examples show."""
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        if self.detail:
            body["detail"] = self.detail
        return body


class BadRequest(ScimError, domain.Invalid):
    """The request is malformed or does not fit the schema (400)."""

    status = 400


class InvalidFilter(BadRequest):
    """A filter is malformed, names an unknown attribute or compares unsupportedly."""

    scim_type = "invalidFilter"


class TooMany(BadRequest):
    """The query would return more results than the server is willing to compute."""

    scim_type = "tooMany"


class InvalidSyntax(BadRequest):
    """The body is not valid JSON, or not the message structure the request needs."""

    scim_type = "invalidSyntax"


class InvalidPath(BadRequest):
    """A PATCH ``path`` is malformed or names an attribute the type lacks."""

    scim_type = "invalidPath"


class NoTarget(BadRequest):
    """A PATCH ``path`` selects nothing where an operation needs a target."""

    scim_type = "noTarget"


class InvalidValue(BadRequest):
    """A value has the wrong type or form, or a required one is missing."""

    scim_type = "invalidValue"


class InvalidVersion(BadRequest):
    """The SCIM protocol version is not supported."""

    scim_type = "invalidVers"


class Mutability(BadRequest):
    """The request would change a read-only or immutable attribute."""

    scim_type = "mutability"


class Sensitive(BadRequest):
    """The request put sensitive data (such as a secret) where it must not go."""

    scim_type = "sensitive"


class Unauthorized(ScimError):
    """No bearer token, or one that is not valid (401, with ``WWW-Authenticate``)."""

    status = 401


class Forbidden(ScimError):
    """The token is valid but may not perform this operation (403)."""

    status = 403


class NotFound(ScimError, domain.NotFound):
    """No resource, endpoint or resource type by that name (404)."""

    status = 404


class MethodNotAllowed(ScimError):
    """The endpoint does not support the HTTP method (405)."""

    status = 405


class Conflict(ScimError, domain.Conflict):
    """A unique attribute (``userName``, ``externalId``...) is already taken (409)."""

    status = 409
    scim_type = "uniqueness"


class ConcurrentModification(Conflict):
    """Other writes kept changing the resource while this one was retried.

    RFC 7644 §3.12 gives 409 to "the specified version number does not match the
    resource's latest version number" but no keyword for it; ``mutability`` ("not
    compatible with the target's ... current state") is the nearest, and unlike
    ``uniqueness`` it does not send a client looking for a duplicate.
    """

    scim_type = "mutability"


class PreconditionFailed(ScimError, domain.PreconditionFailed):
    """``If-Match`` (or a bulk ``version``) names another version (412)."""

    status = 412


class PayloadTooLarge(ScimError):
    """The body, or a bulk request's operation count, is over the limit (413)."""

    status = 413


class UnsupportedMediaType(ScimError):
    """The body is neither ``application/scim+json`` nor JSON (415)."""

    status = 415


class TooManyRequests(ScimError):
    """Slow down (RFC 6585 §4): the response carries ``Retry-After``, which Entra honours."""

    status = 429

    def __init__(self, detail: str, retry_after: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotImplementedYet(ScimError):
    """The request is valid SCIM that this bridge does not implement (501)."""

    status = 501


class Unavailable(ScimError, domain.Unavailable):
    """Redis cannot be reached: 503, so that Entra retries the request later."""

    status = 503


def from_domain(error: domain.BridgeError) -> ScimError:
    """The SCIM error for a domain error raised below the SCIM edge (the directory's,
    the token store's); a SCIM error is already one."""
    if isinstance(error, ScimError):
        return error
    for kind, scim in _FROM_DOMAIN:
        if isinstance(error, kind):
            return scim(error.message)
    return ScimError(error.message)


_FROM_DOMAIN: tuple[tuple[type[domain.BridgeError], type[ScimError]], ...] = (
    (domain.NotFound, NotFound),
    (domain.Conflict, Conflict),
    (domain.PreconditionFailed, PreconditionFailed),
    (domain.Invalid, InvalidValue),
    (domain.Unavailable, Unavailable),
)
