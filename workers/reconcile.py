"""RQ job entry points for Graph reconciliation and resyncs."""

from __future__ import annotations

import logging

from bridge import jobs
from bridge.graph.reconcile import Cancelled
from bridge.graph.runner import SCOPE, GraphRunner
from bridge.resync import Runs
from workers.context import Context, context

log = logging.getLogger(__name__)


def runner(ctx: Context) -> GraphRunner:
    return GraphRunner(
        ctx.directory,
        ctx.relay.resource_types,
        ctx.redis,
        ctx.settings.key_prefix,
        ctx.settings.graph,
    )


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
    from bridge.graph.client import GraphError

    ctx = context()
    runs = Runs(ctx.redis, ctx.settings.key_prefix)
    runs.update(scope, status="running")
    report: dict = {}
    try:
        if mode in ("graph", "both"):
            report = runner(ctx).reconcile(full=full, dry_run=dry_run, scope=scope)
            if report["status"] == "awaiting_confirmation":
                return report
        if mode in ("targets", "both") and not dry_run:
            runs.update(scope, phase="targets")
            report["enqueued"] = sync_targets(ctx, target)
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
    runs.update(scope, status="running", phase="deprovision")
    report = runner(ctx).confirm(scope)
    if mode in ("targets", "both"):
        report["enqueued"] = sync_targets(ctx, target)
    return runs.finish(scope, "completed", **report)


def sync_targets(ctx: Context, target: str | None) -> int:
    """Directory → targets: every resource re-examined by every (or one) enabled target."""
    ids = (
        [ctx.targets.resolve(target)] if target else [t.id for t in ctx.targets.all() if t.enabled]
    )
    return sum(jobs.sync_target(ctx.directory, ctx.queues[jobs.QUEUE], tid) for tid in ids)
