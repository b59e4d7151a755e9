"""Errors of Microsoft Graph access, importable without loading msal or msgraph::

GraphError                 any failure reaching Entra ID or Microsoft Graph
├── GraphAuthError         the identity platform refused us, or Graph said 401/403
├── GraphThrottled         still 429/503/504 after the retry handler gave up
├── GraphNotFound          404: the object asked for does not exist
└── DeltaExpired           a saved delta link is no longer valid: enumerate again
"""

from __future__ import annotations


class GraphError(Exception):
    """A failure reaching Entra ID or Microsoft Graph; ``status`` is Graph's HTTP status
    when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GraphAuthError(GraphError):
    """No token (bad tenant, client id, secret or certificate), or Graph answered 401/403."""


class GraphThrottled(GraphError):
    """Graph kept answering 429/503/504 after every retry; ``retry_after`` is its last
    ``Retry-After`` in seconds, if it sent one."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class GraphNotFound(GraphError):
    """The object asked for (a group whose members were listed, the app) does not exist."""


class DeltaExpired(GraphError):
    """The delta link expired (410 Gone, ``syncStateNotFound``): start a full round."""
