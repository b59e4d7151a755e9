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

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


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
    status = 400


class InvalidFilter(BadRequest):
    scim_type = "invalidFilter"


class TooMany(BadRequest):
    scim_type = "tooMany"


class InvalidSyntax(BadRequest):
    scim_type = "invalidSyntax"


class InvalidPath(BadRequest):
    scim_type = "invalidPath"


class NoTarget(BadRequest):
    scim_type = "noTarget"


class InvalidValue(BadRequest):
    scim_type = "invalidValue"


class InvalidVersion(BadRequest):
    scim_type = "invalidVers"


class Mutability(BadRequest):
    scim_type = "mutability"


class Sensitive(BadRequest):
    scim_type = "sensitive"


class Unauthorized(ScimError):
    status = 401


class Forbidden(ScimError):
    status = 403


class NotFound(ScimError, domain.NotFound):
    status = 404


class MethodNotAllowed(ScimError):
    status = 405


class Conflict(ScimError, domain.Conflict):
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
    status = 412


class PayloadTooLarge(ScimError):
    status = 413


class UnsupportedMediaType(ScimError):
    status = 415


class TooManyRequests(ScimError):
    """Slow down (RFC 6585 §4): the response carries ``Retry-After``, which Entra honours."""

    status = 429

    def __init__(self, detail: str, retry_after: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotImplementedYet(ScimError):
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
