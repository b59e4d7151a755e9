"""Run a reconciliation to completion: used by the worker job and by the CLI."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import redis

from bridge.directory.records import Directory
from bridge.graph.guard import DeletionGuard
from bridge.graph.links import Links
from bridge.graph.reconciler import Options, Reconciler
from bridge.graph.runs import Runs
from bridge.graph.settings import GraphSettings
from bridge.graph.translate import load_config
from bridge.scim.resource_types import ResourceType

SCOPE = "default"
"""One Graph scope per deployment: the enterprise application (or the configured groups)."""

OBJECT_SCOPE = "object"
"""Runs that reconcile a single object report here, apart from the scheduled runs."""


@dataclass
class GraphRunner:
    """Builds a :class:`Reconciler` from settings and runs it inside one event loop, with
    a Graph source opened and closed around it."""

    directory: Directory
    resource_types: dict[str, ResourceType]
    redis: redis.Redis
    prefix: str
    settings: GraphSettings

    @property
    def runs(self) -> Runs:
        """The run records."""
        return Runs(self.redis, self.prefix)

    def reconciler(self, scope: str, options: Options) -> Reconciler:
        """A reconciler for one run of ``scope``; TranslationError if a mapping file is wrong."""
        return Reconciler(
            self.directory,
            self.resource_types,
            Links(self.redis, self.prefix),
            self.runs,
            scope,
            load_config(self.settings),
            options,
        )

    def options(self, *, dry_run: bool = False, confirmed: bool = False) -> Options:
        """Run options with the configured deletion guard."""
        return Options(
            dry_run=dry_run,
            confirmed=confirmed,
            guard_max=self.settings.guard_max,
            guard_share=self.settings.guard_share,
        )

    def reconcile(
        self, *, full: bool = False, dry_run: bool = False, scope: str = SCOPE
    ) -> dict[str, Any]:
        """A full or incremental run; the caller registered it with Runs.start(scope) and
        finishes it with the report's ``status``."""
        from bridge.graph.source import GraphSource  # loads msal and msgraph

        reconciler = self.reconciler(scope, self.options(dry_run=dry_run))

        async def go() -> dict[str, Any]:
            """The run, inside one Graph session."""
            async with GraphSource(self.settings) as source:
                return await (reconciler.full(source) if full else reconciler.incremental(source))

        return asyncio.run(go())

    def reconcile_object(self, kind: str, key: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Reconcile one user (id or userPrincipalName) or group (id) now."""
        from bridge.graph.source import GraphSource

        runs = self.runs
        runs.start(OBJECT_SCOPE, kind=kind, key=key, dry_run=dry_run)
        try:
            reconciler = self.reconciler(
                OBJECT_SCOPE, self.options(dry_run=dry_run, confirmed=True)
            )

            async def go() -> dict[str, Any]:
                """The object's reconciliation, inside one Graph session."""
                async with GraphSource(self.settings) as source:
                    return await reconciler.one(source, kind, key)

            report = asyncio.run(go())
        except Exception as exc:
            runs.finish(OBJECT_SCOPE, "failed", errors=[f"{type(exc).__name__}: {exc}"])
            raise
        runs.finish(OBJECT_SCOPE, report["status"], drift=report["drift"], errors=report["errors"])
        return report

    def confirm(self, scope: str = SCOPE) -> dict[str, Any]:
        """Apply the deprovisions a guarded run is waiting on: ``{"deprovisioned",
        "errors"}``; the caller finishes the run (``completed_with_errors`` when there are
        errors)."""
        pending = DeletionGuard.from_pending(self.runs.pending(scope))
        reconciler = self.reconciler(scope, self.options(confirmed=True))
        reconciler.apply_deprovisions(pending)
        return {"deprovisioned": len(pending), "errors": reconciler.errors}
