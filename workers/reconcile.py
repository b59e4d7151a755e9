"""RQ job entry points for Graph reconciliation and resyncs."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import redis

from bridge.delivery.jobs import SETTLE_JOB
from bridge.graph.reconciler import Cancelled
from bridge.graph.runner import SCOPE
from bridge.observability import request_context as trace
from bridge.runtime.services import Services
from workers.context import context

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 1.0
"""How often a resync waiting for its deliveries counts how many remain."""


def _traced(job: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Run a resync job as the work of ``resync-<run id>``: the directory writes it makes
    carry that id into the change stream, and the deliveries they cause log it."""

    @functools.wraps(job)
    def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        scope = kwargs.get("scope", SCOPE)
        record = context().runs.get(scope) or {}
        with trace.bound(f"resync-{record['id']}" if record.get("id") else None):
            return job(*args, **kwargs)

    return run


@_traced
def resync(
    mode: str = "both",
    target: str | None = None,
    dry_run: bool = False,
    full: bool = False,
    scope: str = SCOPE,
) -> dict[str, Any]:
    """Graph → directory (``graph``), directory → targets (``targets``), or ``both``.

    The run was registered by whoever enqueued it (Runs.start); this job reports progress
    into it and finishes it. The targets phase is done when every delivery it queued has
    settled (delivered, unchanged, held or dead-lettered), not when they are queued: then
    :func:`settle` finishes the run.
    """
    ctx = context()
    runs = ctx.runs
    runs.update(scope, status="running")
    report: dict[str, Any] = {"status": "completed"}
    try:
        if mode in ("graph", "both"):
            report = ctx.graph_runner().reconcile(full=full, dry_run=dry_run, scope=scope)
            if report["status"] == "awaiting_confirmation":
                return report
        if mode in ("targets", "both") and not dry_run:
            report["enqueued"] = sync_targets(ctx, target, scope)
            return _await_deliveries(ctx, scope, report)
    except Cancelled:
        return runs.finish(scope, "cancelled")
    except redis.RedisError:
        raise  # the job is run again once Redis answers (jobs.RERUNS)
    except Exception as exc:  # noqa: BLE001 - Graph unreachable, a bad mapping, a bug: the run failed
        log.warning("resync failed: %s: %s", type(exc).__name__, exc)
        return runs.finish(scope, "failed", errors=[f"{type(exc).__name__}: {exc}"])
    return runs.finish(scope, _final_status(report), **report)


@_traced
def confirm(scope: str = SCOPE, mode: str = "both", target: str | None = None) -> dict[str, Any]:
    """Apply the deprovisions a guarded run held back, after an admin confirmed them."""
    ctx = context()
    runs = ctx.runs
    runs.update(scope, status="running", phase="deprovision")
    report = ctx.graph_runner().confirm(scope)
    if mode in ("targets", "both"):
        report["enqueued"] = sync_targets(ctx, target, scope)
        return _await_deliveries(ctx, scope, report)
    return runs.finish(scope, _final_status(report), **report)


def settle(scope: str = SCOPE) -> dict[str, Any]:
    """Count what the run's targets phase still waits for; finish the run when nothing
    remains, else look again in PROGRESS_SECONDS (a job of its own each time, so no
    worker thread waits, and a worker that dies meanwhile loses nothing)."""
    ctx = context()
    runs = ctx.runs
    run = runs.get(scope) or {}
    if run.get("status") not in ("queued", "running"):
        return run  # finished or cancelled meanwhile
    remaining = runs.remaining(scope)
    total = int(run.get("total", 0))
    runs.update(scope, done=total - remaining)
    if run.get("cancel"):
        return runs.finish(scope, "cancelled")
    if remaining:
        ctx.jobs.resync(SETTLE_JOB, delay=PROGRESS_SECONDS, scope=scope)
        return runs.get(scope) or {}
    report = dict(run.get("report") or {})
    return runs.finish(scope, _final_status(report), report=None, **report)


def sync_targets(ctx: Services, target: str | None, scope: str) -> int:
    """Directory → targets: every resource re-examined by every (or one) enabled target;
    each delivery is counted as remaining work of the run until it settles."""
    chosen = (
        [ctx.targets.get(ctx.targets.resolve(target))]
        if target
        else [t for t in ctx.targets.all() if t.enabled]
    )
    ctx.runs.forget_remaining(scope)
    ctx.runs.update(scope, phase="targets", done=0, total=0)
    total = 0
    for t in chosen:
        total += ctx.jobs.sync_target(
            ctx.directory,
            t.id,
            concurrency=t.concurrency,
            run=scope,
            expect=lambda tid, items: ctx.runs.expect(scope, tid, items),
        )
        ctx.runs.update(scope, total=total)
    return total


def _await_deliveries(ctx: Services, scope: str, report: dict[str, Any]) -> dict[str, Any]:
    """Keep the report with the run and let :func:`settle` finish it."""
    record = ctx.runs.update(scope, phase="targets", report=report)
    ctx.jobs.resync(SETTLE_JOB, scope=scope)
    return record


def _final_status(report: dict[str, Any]) -> str:
    """``completed``, or ``completed_with_errors`` when the run recorded any."""
    status: str = report.pop("status", "completed")
    if status == "completed" and report.get("errors"):
        return "completed_with_errors"
    return status
