"""Resyncs and reconciliation, shared by the /admin API and the CLI.

A resync runs in a worker (job ``workers.reconcile.resync``): Graph → directory, then
directory → targets. One runs at a time per scope; its progress, drift counts and errors
are readable while it runs, and it can be cancelled. A run that would deprovision too much
waits for ``confirm``.
"""

from __future__ import annotations

from typing import Any

from bridge.delivery.jobs import CONFIRM_JOB
from bridge.errors import Conflict, Invalid
from bridge.graph.runner import SCOPE, GraphRunner
from bridge.graph.runs import Runs
from bridge.runtime.services import Services

MODES = ("graph", "targets", "both")

NOT_CONFIGURED = (
    "Microsoft Graph is not configured: set BRIDGE_GRAPH_TENANT_ID, BRIDGE_GRAPH_CLIENT_ID, "
    "BRIDGE_GRAPH_CLIENT_SECRET (or BRIDGE_GRAPH_CERT_PATH) and BRIDGE_GRAPH_SERVICE_PRINCIPAL_ID "
    "(or BRIDGE_GRAPH_SCOPE_GROUPS)."
)


class ResyncAdmin:
    """Starting, watching, cancelling and confirming resyncs; one object's reconciliation."""

    def __init__(self, state: Services) -> None:
        self.state = state
        self.runs = Runs(state.redis, state.settings.key_prefix)

    def start(
        self,
        mode: str = "both",
        target: str | None = None,
        *,
        dry_run: bool = False,
        full: bool = False,
    ) -> dict[str, Any]:
        """Register and enqueue a resync; Conflict while another one runs."""
        if mode not in MODES:
            raise Invalid(f"mode must be one of {', '.join(MODES)}")
        if mode != "targets":
            self._require_graph()
        target_id = self.state.targets.resolve(target) if target else None
        self.runs.start(SCOPE, mode=mode, target=target_id, dry_run=dry_run, full=full)
        self.state.jobs.resync(
            mode=mode,
            target=target_id,
            dry_run=dry_run,
            full=full,
            scope=SCOPE,
        )
        return self._current()

    def status(self) -> dict[str, Any]:
        """The current run, how many deprovisions wait for confirmation, recent runs."""
        return {
            "current": self.runs.get(SCOPE),
            "pending_deprovisions": len(self.runs.pending(SCOPE)),
            "history": self.runs.history(SCOPE),
        }

    def _current(self) -> dict[str, Any]:
        return self.runs.get(SCOPE) or {}

    def cancel(self) -> dict[str, Any]:
        """Ask the running resync to stop at its next step."""
        if not self.runs.cancel(SCOPE):
            raise Conflict("no resync is running")
        return self._current()

    def confirm(self) -> dict[str, Any]:
        """Let a run that stopped at the deletion guard apply its deprovisions."""
        current = self.runs.get(SCOPE)
        if not current or current["status"] != "awaiting_confirmation":
            raise Conflict("no resync is waiting for confirmation")
        self.runs.update(SCOPE, status="queued", phase="confirmed")
        self.state.jobs.resync(
            CONFIRM_JOB,
            scope=SCOPE,
            mode=current.get("mode", "both"),
            target=current.get("target"),
        )
        return self._current()

    def reconcile_object(self, kind: str, key: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Reconcile one user or group with Entra now, in this process."""
        from bridge.graph.errors import GraphError
        from bridge.graph.translate import TranslationError

        if kind not in ("user", "group"):
            raise Invalid("kind must be user or group")
        self._require_graph()
        try:
            return self.runner().reconcile_object(kind, key, dry_run=dry_run)
        except GraphError as exc:
            raise Conflict(f"Microsoft Graph: {exc}") from exc
        except TranslationError as exc:
            raise Conflict(f"Graph mapping: {exc}") from exc

    def runner(self) -> GraphRunner:
        """Reconciliation with Entra, built from the services."""
        return self.state.graph_runner()

    def _require_graph(self) -> None:
        if not self.state.settings.graph.configured:
            raise Conflict(NOT_CONFIGURED)
