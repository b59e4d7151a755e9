"""What a reconciliation run found and how far it got, reported into its Runs record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.graph.runs import Runs

SAMPLES = 20
"""Ids kept per drift class in a run's report."""

MAX_ERRORS = 100
"""Errors kept in a run's report; the count goes on (``error_count``)."""

PROGRESS_EVERY = 500
"""Objects between two progress updates of the run record."""

COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
"""The run went through, but some objects could not be read, mapped or written."""
AWAITING_CONFIRMATION = "awaiting_confirmation"
"""The deletion guard stopped the run before its deprovisions."""

DRIFT_CLASSES = ("missing", "unassigned", "attributes", "membership")
"""``missing``: in scope in Entra, absent from the directory; ``unassigned``: in the
directory, out of scope or deleted in Entra; ``attributes``: mapped attributes differ;
``membership``: group members differ."""


class Cancelled(Exception):
    """An admin cancelled the run; it stopped between two pages."""


@dataclass
class Drift:
    """Counts (and a few ids) per drift class."""

    missing: int = 0
    unassigned: int = 0
    attributes: int = 0
    membership: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, key: str) -> None:
        """Count one object of drift class ``kind``."""
        setattr(self, kind, getattr(self, kind) + 1)
        bucket = self.samples.setdefault(kind, [])
        if len(bucket) < SAMPLES:
            bucket.append(key)

    def as_dict(self) -> dict[str, Any]:
        """The counts and samples, as a report shows them."""
        out: dict[str, Any] = {kind: getattr(self, kind) for kind in DRIFT_CLASSES}
        out["samples"] = self.samples
        return out


class Progress:
    """A run's drift, errors and progress; phases and progress go to the Runs record."""

    def __init__(self, runs: Runs, scope: str) -> None:
        self.runs = runs
        self.scope = scope
        self.drift = Drift()
        self.errors: list[str] = []
        self.error_count = 0
        self.done = 0

    def error(self, message: str) -> None:
        """Record that one object could not be read, mapped or written."""
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)

    def phase(self, phase: str, total: int | None = None) -> None:
        """Enter a phase; ``total`` restarts the done/total counter."""
        fields: dict[str, Any] = {
            "phase": phase,
            "drift": self.drift.as_dict(),
            "errors": self.errors,
        }
        if total is not None:
            fields.update(total=total, done=0)
            self.done = 0
        self.runs.update(self.scope, **fields)

    def tick(self) -> None:
        """One more object handled."""
        self.done += 1
        if self.done % PROGRESS_EVERY == 0:
            self.runs.update(
                self.scope, done=self.done, drift=self.drift.as_dict(), errors=self.errors
            )

    def check_cancel(self) -> None:
        """Raise :class:`Cancelled` when an admin cancelled the run."""
        if self.runs.cancelled(self.scope):
            raise Cancelled()

    def report(self, status: str = COMPLETED) -> dict[str, Any]:
        """The run's report; a completed run that recorded errors is
        ``completed_with_errors``."""
        if status == COMPLETED and self.error_count:
            status = COMPLETED_WITH_ERRORS
        return {
            "status": status,
            "drift": self.drift.as_dict(),
            "errors": self.errors,
            "error_count": self.error_count,
            "done": self.done,
        }
