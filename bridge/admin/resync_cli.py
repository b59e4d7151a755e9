"""``bridge resync …``, ``bridge reconcile …`` and ``bridge status`` (or ``flask --app app …``).

``resync start --wait`` follows the run with a progress bar of the run's own counts: in the
targets phase they are the deliveries the run queued that have settled (delivered, failed
or held), not only the ones queued. It exits 1 unless the run completed (or stopped for a
confirmation): a failed, cancelled or erroneous run fails the command.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import orjson
from flask import current_app
from flask.cli import with_appcontext

from bridge.admin.cli_support import BridgeGroup, call
from bridge.admin.resync import ResyncAdmin
from bridge.graph.reconciler import Cancelled
from bridge.graph.runner import SCOPE

resync_cli = BridgeGroup("resync", help="Full resync: Entra (Graph) → directory → targets.")

WAIT_POLL_SECONDS = 0.5
"""How often ``--wait`` reads the run's progress."""

BAR_WIDTH = 30
"""Characters of the progress bar."""


def _admin() -> ResyncAdmin:
    return ResyncAdmin(current_app.extensions["bridge"])


def _show(run: dict[str, Any] | None) -> None:
    if not run:
        click.echo("no resync has run")
        return
    drift = run.get("drift") or {}
    counts = ", ".join(
        f"{k} {drift.get(k, 0)}" for k in ("missing", "unassigned", "attributes", "membership")
    )
    click.echo(
        f"{run['id']}  {run['status']}  phase {run.get('phase')}  "
        f"{run.get('done', 0)}/{run.get('total', 0)}  drift: {counts or '-'}"
    )
    for error in (run.get("errors") or [])[:10]:
        click.echo(f"  error: {error}")


@resync_cli.command("start")
@click.option(
    "--mode", type=click.Choice(["graph", "targets", "both"]), default="both", show_default=True
)
@click.option("--target", help="Only this target (id or name); all enabled targets otherwise.")
@click.option("--full", is_flag=True, help="Read everything from Graph, not only what changed.")
@click.option("--dry-run", is_flag=True, help="Report drift, change nothing.")
@click.option("--wait", is_flag=True, help="Follow the run until it ends.")
def start(mode: str, target: str | None, full: bool, dry_run: bool, wait: bool) -> None:
    """Start a resync in the workers."""
    run = call(_admin().start, mode, target, dry_run=dry_run, full=full)
    _show(run)
    if wait:
        _exit_for(_follow())


@resync_cli.command("status")
def status() -> None:
    """Show the current (or last) resync and pending deprovisions."""
    state = _admin().status()
    _show(state["current"])
    if state["pending_deprovisions"]:
        click.echo(f"{state['pending_deprovisions']} deprovisions wait for: bridge resync confirm")


@resync_cli.command("watch")
def watch() -> None:
    """Follow the current resync until it ends (as ``start --wait``); exit 1 unless it
    completed."""
    _exit_for(_follow())


@resync_cli.command("cancel")
def cancel() -> None:
    """Cancel the running resync."""
    _show(call(_admin().cancel))


@resync_cli.command("confirm")
def confirm() -> None:
    """Apply the deprovisions a resync stopped for (deletion guard)."""
    _show(call(_admin().confirm))


SUCCESS = ("completed", "awaiting_confirmation")
"""Run statuses after which ``--wait`` and ``reconcile`` exit 0; any other exits 1."""


def _follow() -> dict[str, Any] | None:
    """Draw the run's progress (deliveries included) until it ends; return its record.

    On a terminal the bar is redrawn in place (a new line per phase); elsewhere a line is
    printed each time the progress changes."""
    runs = _admin().runs
    tty = sys.stdout.isatty()
    last: tuple[str, str] | None = None
    while True:
        run = runs.get(SCOPE)
        if run is None or run["status"] not in ("queued", "running"):
            if tty and last:
                click.echo()
            _show(run)
            return run
        phase, line = str(run.get("phase") or run["status"]), progress_line(run)
        if last is None or line != last[1]:
            if tty:
                ending = "\n" if last and last[0] != phase else ""
                click.echo(f"{ending}\r{line}", nl=False)
            else:
                click.echo(line)
            last = (phase, line)
        time.sleep(WAIT_POLL_SECONDS)


def progress_line(run: dict[str, Any]) -> str:
    """``  targets    [#########-----]  60%  3/5``: the run's phase and done/total."""
    done, total = int(run.get("done") or 0), int(run.get("total") or 0)
    phase = str(run.get("phase") or run.get("status"))
    if total <= 0:
        return f"  {phase:<10} [{'-' * BAR_WIDTH}]    ?  {done}/?"
    filled = BAR_WIDTH * min(done, total) // total
    percent = 100 * min(done, total) // total
    return (
        f"  {phase:<10} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {percent:3d}%  {done}/{total}"
    )


def _exit_for(run: dict[str, Any] | None) -> None:
    """Exit 1 unless the run completed cleanly (or waits for its confirmation)."""
    status = (run or {}).get("status")
    if status == "awaiting_confirmation":
        click.echo("deprovisions wait for: bridge resync confirm")
    if status not in SUCCESS:
        raise SystemExit(1)


@click.command("reconcile")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="Report drift, change nothing.")
@click.option("--full", is_flag=True, help="Read everything from Graph, not only what changed.")
@click.option(
    "--object", "obj", metavar="KIND:KEY", help="One object: user:<id or UPN> or group:<id>."
)
def reconcile_cli(dry_run: bool, full: bool, obj: str | None) -> None:
    """Reconcile the directory with Entra now, in this process, and print the drift."""
    admin = _admin()
    if obj:
        kind, _, key = obj.partition(":")
        report = call(admin.reconcile_object, kind, key, dry_run=dry_run)
    else:
        call(admin._require_graph)
        runs = admin.runs
        call(runs.start, SCOPE, mode="graph", dry_run=dry_run, full=full)
        runs.update(SCOPE, status="running")
        try:
            report = admin.runner().reconcile(full=full, dry_run=dry_run)
        except Cancelled:
            runs.finish(SCOPE, "cancelled")
            raise click.ClickException("cancelled") from None
        except Exception as exc:
            runs.finish(SCOPE, "failed", errors=[f"{type(exc).__name__}: {exc}"])
            raise click.ClickException(f"reconciliation failed: {exc}") from exc
        if report["status"] != "awaiting_confirmation":
            runs.finish(SCOPE, report["status"], drift=report["drift"], errors=report["errors"])
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    _exit_for(report)


@click.command("status")
@with_appcontext
def status_cli() -> None:
    """What the bridge is doing: directory, change stream, queues, workers, targets."""
    from bridge.admin.overview import overview

    click.echo(
        orjson.dumps(
            overview(current_app.extensions["bridge"]), option=orjson.OPT_INDENT_2
        ).decode()
    )
