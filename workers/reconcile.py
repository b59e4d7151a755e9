"""RQ job entry points for Graph reconciliation and resyncs."""

from __future__ import annotations

import asyncio
import logging

from bridge import jobs
from bridge.graph.links import Links
from bridge.graph.mapping import load_config
from bridge.graph.reconcile import Cancelled, Options, Reconciler
from bridge.graph.source import GraphError, GraphSource
from bridge.resync import Runs
from workers.context import Context, context

log = logging.getLogger(__name__)

SCOPE = "default"
"""One Graph scope per deployment: the enterprise application (or the configured groups)."""


def resync(
    mode: str = "both",
    target: str | None = None,
    dry_run: bool = False,
    full: bool = False,
    scope: str = SCOPE,
) -> dict:
    """Graph → directory (``graph``), directory → targets (``targets``), or ``both``.

    The run was registered by whoever enqueued it (Runs.start); this job reports progress
    into it and finishes it.
    """
    ctx = context()
    runs = Runs(ctx.redis, ctx.settings.key_prefix)
    runs.update(scope, status="running")
    report: dict = {}
    try:
        if mode in ("graph", "both"):
            report = asyncio.run(_reconcile(ctx, runs, scope, full=full, dry_run=dry_run))
            if report["status"] == "awaiting_confirmation":
                return report
        if mode in ("targets", "both") and not dry_run:
            runs.update(scope, phase="targets")
            report["enqueued"] = _sync_targets(ctx, target)
    except Cancelled:
        return runs.finish(scope, "cancelled")
    except GraphError as exc:
        log.warning("resync failed: %s", exc)
        return runs.finish(scope, "failed", errors=[f"{type(exc).__name__}: {exc}"])
    report.pop("status", None)
    return runs.finish(scope, "completed", **report)


def confirm(scope: str = SCOPE, mode: str = "both", target: str | None = None) -> dict:
    """Apply the deprovisions a guarded run held back, after an admin confirmed them."""
    ctx = context()
    runs = Runs(ctx.redis, ctx.settings.key_prefix)
    pending = [(p["kind"], p["id"]) for p in runs.pending(scope)]
    runs.update(scope, status="running")
    reconciler = _reconciler(ctx, runs, scope, Options(confirmed=True))
    reconciler.apply_deprovisions(pending)
    report = {"deprovisioned": len(pending), "errors": reconciler.errors}
    if mode in ("targets", "both"):
        report["enqueued"] = _sync_targets(ctx, target)
    return runs.finish(scope, "completed", **report)


async def _reconcile(ctx: Context, runs: Runs, scope: str, *, full: bool, dry_run: bool) -> dict:
    settings = ctx.settings.graph
    reconciler = _reconciler(ctx, runs, scope, Options(dry_run=dry_run, **_guard(settings)))
    async with GraphSource(settings) as source:
        if full:
            return await reconciler.full(source)
        return await reconciler.incremental(source)


def _reconciler(ctx: Context, runs: Runs, scope: str, options: Options) -> Reconciler:
    return Reconciler(
        ctx.directory,
        ctx.relay.resource_types,
        Links(ctx.redis, ctx.settings.key_prefix),
        runs,
        scope,
        load_config(ctx.settings.graph),
        options,
    )


def _guard(settings) -> dict:
    return {"guard_max": settings.guard_max, "guard_share": settings.guard_share}


def _sync_targets(ctx: Context, target: str | None) -> int:
    """Directory → targets: every resource re-examined by every (or one) enabled target."""
    ids = (
        [ctx.targets.resolve(target)] if target else [t.id for t in ctx.targets.all() if t.enabled]
    )
    return sum(jobs.sync_target(ctx.directory, ctx.queues[jobs.QUEUE], tid) for tid in ids)
