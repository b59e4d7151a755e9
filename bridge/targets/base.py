"""What every connector implements, and the one error type delivery understands.

A connector turns a *change* (what a target must do so that it matches the directory)
into calls to the target. It reports failures as TargetError, retryable or not; the
delivery engine decides about retries, dead letters and the circuit breaker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bridge.directory.stored import Kind

Action = Literal["create", "update", "deactivate", "delete", "none"]
"""What a change asks of a target (``none``: only a group's members change)."""


class TargetError(Exception):
    """A call to a target failed. ``retry_after`` (seconds) comes from the target."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


@dataclass
class Change:
    """What one target must do for one resource.

    ``action`` is ``create``, ``update``, ``deactivate``, ``delete`` or ``none``; for groups,
    ``members_added``/``members_removed`` hold our ids of members to add or remove.
    ``state`` is what the bridge last delivered (connector-specific fields included).
    """

    kind: Kind
    id: str
    action: Action
    payload: dict[str, Any] | None
    state: dict[str, Any]
    idempotency_key: str
    members_added: list[str] = field(default_factory=list)
    members_removed: list[str] = field(default_factory=list)
    member_refs: dict[str, str] = field(default_factory=dict)
    payload_digest: str | None = None
    """The payload's digest as the planner made it (the state after the change keeps it);
    None when it has not been computed."""


@dataclass
class Applied:
    """What a connector did: last HTTP status and anything it must remember."""

    status: int | None
    remember: dict[str, Any] = field(default_factory=dict)


class Connector(Protocol):
    """What the relay needs of a target's connector."""

    def apply(self, change: Change) -> Applied:
        """Bring the target's copy of one resource in line with ``change``."""
        ...

    def check(self) -> Applied:
        """Probe the target (used by ``targets test`` and the circuit breaker)."""
        ...

    def close(self) -> None:
        """Close the connector's pooled connections (its target's settings changed)."""
        ...
