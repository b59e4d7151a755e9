"""Deprovisions and the deletion guard: a run that would deprovision too much of the
directory stops and waits for an admin, rather than acting on what may be a misconfigured
scope or a Graph outage that looks like mass unassignment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.directory.records import Directory
from bridge.directory.stored import Kind
from bridge.graph.report import AWAITING_CONFIRMATION, Progress
from bridge.graph.runs import Runs
from bridge.graph.settings import DEFAULT_GUARD_MAX, DEFAULT_GUARD_SHARE
from bridge.graph.writes import Writes

Doomed = list[tuple[str, str]]
"""Deprovisions: ``(kind, bridge id)`` pairs, users to disable and groups to delete."""


@dataclass(frozen=True)
class DeletionGuard:
    """Holds a run deprovisioning more than ``max`` objects, or more than ``share`` of
    the directory."""

    max: int = DEFAULT_GUARD_MAX
    share: float = DEFAULT_GUARD_SHARE

    def holds(self, doomed: int, directory_size: int) -> bool:
        """Whether ``doomed`` deprovisions out of ``directory_size`` records need an admin."""
        return doomed > self.max or (directory_size > 0 and doomed > self.share * directory_size)

    @staticmethod
    def pending(doomed: Doomed) -> list[dict[str, str]]:
        """The held deprovisions as the run record keeps them."""
        return [{"kind": kind, "id": rid} for kind, rid in doomed]

    @staticmethod
    def from_pending(pending: list[dict[str, str]]) -> Doomed:
        """The deprovisions an admin confirmed, from the run record."""
        return [(p["kind"], p["id"]) for p in pending]


class Deprovisions:
    """Ends a run: its deprovisions are counted as ``unassigned`` drift, then applied, or
    held for an admin when the guard says so (never by a dry run, which only counts)."""

    def __init__(
        self,
        directory: Directory,
        runs: Runs,
        progress: Progress,
        writes: Writes,
        guard: DeletionGuard,
        *,
        dry_run: bool,
        confirmed: bool,
    ) -> None:
        self.directory = directory
        self.runs = runs
        self.progress = progress
        self.writes = writes
        self.guard = guard
        self.dry_run = dry_run
        self.confirmed = confirmed
        """An admin confirmed this run's deprovisions: the guard does not stop it."""

    def unseen(self, kind: Kind, seen: set[str]) -> Doomed:
        """Directory resources a full run did not find in scope (disabled users aside)."""
        out: Doomed = []
        for record in self.directory.scan(kind):
            if record.id in seen:
                continue
            if kind == "user" and record.doc.get("active") is False:
                continue
            out.append((kind, record.id))
        return out

    def settle(self, doomed: Doomed) -> dict[str, Any]:
        """Count, then apply or hold, the run's deprovisions; the run's report."""
        for _, rid in doomed:
            self.progress.drift.note("unassigned", rid)
        if self.dry_run or not doomed:
            return self.progress.report()
        total = self.directory.count("user") + self.directory.count("group")
        if self.guard.holds(len(doomed), total) and not self.confirmed:
            report = self.progress.report(AWAITING_CONFIRMATION)
            self.runs.await_confirmation(self.progress.scope, self.guard.pending(doomed), **report)
            return report
        self.apply(doomed)
        return self.progress.report()

    def apply(self, doomed: Doomed) -> None:
        """Disable users and delete groups that left Entra's scope."""
        self.progress.phase("deprovision", total=len(doomed))
        for kind, rid in doomed:
            if kind == "user":
                self.writes.disable_user(rid)
            else:
                self.writes.delete_group(rid)
            self.progress.tick()
