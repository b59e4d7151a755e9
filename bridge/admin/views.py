"""The /admin blueprint: targets, their deliveries, dead letters and held deliveries.

``<target>`` is a target's id or its name. Secrets are write-only: schemas never dump
them and the service returns public views only.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from bridge.admin.overview import overview
from bridge.admin.resync import ResyncAdmin
from bridge.admin.targets import TargetAdmin
from schemas.admin import (
    CheckResultSchema,
    DeliveryQuerySchema,
    DeliverySchema,
    DiscardResultSchema,
    FailedDeliverySchema,
    OverviewSchema,
    ReconcileObjectSchema,
    ReconcileReportSchema,
    ReplayResultSchema,
    ReplaySchema,
    ResyncRunSchema,
    ResyncStartSchema,
    ResyncStatusSchema,
    SyncResultSchema,
    TargetChangesSchema,
    TargetSchema,
)

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Targets and their deliveries.")


def service() -> TargetAdmin:
    """The target service over the app's services."""
    return TargetAdmin.of(current_app.extensions["bridge"])


@blp.route("/targets")
class Targets(MethodView):
    """The collection of delivery targets."""

    @blp.response(200, TargetSchema(many=True))
    def get(self) -> Any:
        """List targets with their status (breaker, dead letters, held, counters)."""
        return service().all()

    @blp.arguments(TargetSchema)
    @blp.response(201, TargetSchema)
    @blp.alt_response(409, description="Name taken, or BRIDGE_SECRET_KEYS not set")
    def post(self, data: dict[str, Any]) -> Any:
        """Add a target. Its secrets are stored encrypted and never returned."""
        return service().create(data)


@blp.route("/targets/<target>")
class TargetResource(MethodView):
    """One target, by id or name."""

    @blp.response(200, TargetSchema)
    def get(self, target: str) -> Any:
        """Show a target (by id or name)."""
        return service().show(target)

    @blp.arguments(TargetChangesSchema)
    @blp.response(200, TargetSchema)
    def patch(self, changes: dict[str, Any], target: str) -> Any:
        """Change some of a target's settings; secrets not sent are kept."""
        return service().update(target, changes)

    @blp.response(204)
    def delete(self, target: str) -> Any:
        """Remove a target and its delivery history."""
        service().delete(target)


@blp.route("/targets/<target>/test")
class TargetCheck(MethodView):
    """A connectivity probe of one target."""

    @blp.response(200, CheckResultSchema)
    def post(self, target: str) -> Any:
        """Probe the target now; ``ok`` says whether it answered."""
        return service().check(target)


@blp.route("/targets/<target>/sync")
class TargetSync(MethodView):
    """A full resync of one target."""

    @blp.response(202, SyncResultSchema)
    def post(self, target: str) -> Any:
        """Queue every user and group for the target (a full resync)."""
        return {"enqueued": service().sync(target)}


@blp.route("/targets/<target>/deliveries")
class TargetDeliveries(MethodView):
    """One target's delivery log."""

    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliverySchema(many=True))
    def get(self, args: dict[str, Any], target: str) -> Any:
        """Recent deliveries, newest first."""
        return service().log(target, args["limit"])


@blp.route("/targets/<target>/failed")
class FailedDeliveries(MethodView):
    """One target's dead letters."""

    @blp.response(200, FailedDeliverySchema(many=True))
    def get(self, target: str) -> Any:
        """Dead letters: deliveries that failed every attempt."""
        return service().parked(target, "dead")


@blp.route("/targets/<target>/failed/replay")
class FailedReplay(MethodView):
    """Replaying dead letters."""

    @blp.arguments(ReplaySchema, required=False)
    @blp.response(202, ReplayResultSchema)
    def post(self, body: dict[str, Any], target: str) -> Any:
        """Send dead letters again: all of them, or the ``items`` given."""
        return {"replayed": service().replay_failed(target, body.get("items"))}


@blp.route("/targets/<target>/held")
class HeldDeliveries(MethodView):
    """Deliveries held by the breaker or the deletion guard."""

    @blp.response(200, FailedDeliverySchema(many=True))
    def get(self, target: str) -> Any:
        """Deliveries held by the circuit breaker or the deletion guard."""
        return service().parked(target, "held")


@blp.route("/targets/<target>/held/approve")
class HeldApprove(MethodView):
    """Releasing held deliveries."""

    @blp.arguments(ReplaySchema, required=False)
    @blp.response(202, ReplayResultSchema)
    def post(self, body: dict[str, Any], target: str) -> Any:
        """Send held deliveries: all of them, or the ``items`` given."""
        return {"replayed": service().approve(target, body.get("items"))}


@blp.route("/targets/<target>/held/reject")
class HeldReject(MethodView):
    """Dropping held deliveries."""

    @blp.arguments(ReplaySchema, required=False)
    @blp.response(200, DiscardResultSchema)
    def post(self, body: dict[str, Any], target: str) -> Any:
        """Drop held deliveries without sending them."""
        return {"discarded": service().reject(target, body.get("items"))}


def resyncs() -> ResyncAdmin:
    """The resync service over the app's services."""
    return ResyncAdmin(current_app.extensions["bridge"])


@blp.route("/resync")
class Resync(MethodView):
    """The resync: its status, and starting one."""

    @blp.response(200, ResyncStatusSchema)
    def get(self) -> Any:
        """The current (or last) resync, pending deprovisions, and recent runs."""
        return resyncs().status()

    @blp.arguments(ResyncStartSchema)
    @blp.response(202, ResyncRunSchema)
    @blp.alt_response(409, description="A resync is running, or Graph is not configured")
    def post(self, data: dict[str, Any]) -> Any:
        """Start a resync (Graph → directory → targets); one runs at a time."""
        return resyncs().start(
            data["mode"], data["target"], dry_run=data["dry_run"], full=data["full"]
        )


@blp.route("/resync/cancel")
class ResyncCancel(MethodView):
    """Cancelling the running resync."""

    @blp.response(200, ResyncRunSchema)
    def post(self) -> Any:
        """Cancel the running resync (it stops between pages)."""
        return resyncs().cancel()


@blp.route("/resync/confirm")
class ResyncConfirm(MethodView):
    """Confirming the deprovisions a guarded resync stopped for."""

    @blp.response(202, ResyncRunSchema)
    def post(self) -> Any:
        """Apply the deprovisions a resync stopped for (the deletion guard)."""
        return resyncs().confirm()


@blp.route("/reconcile/object")
class ReconcileObject(MethodView):
    """Reconciling one user or group with Entra now."""

    @blp.arguments(ReconcileObjectSchema)
    @blp.response(200, ReconcileReportSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Reconcile one user or group with Entra now."""
        return resyncs().reconcile_object(data["kind"], data["key"], dry_run=data["dry_run"])


@blp.route("/status")
class Status(MethodView):
    """What the bridge is doing, at a glance."""

    @blp.response(200, OverviewSchema)
    def get(self) -> Any:
        """What the bridge is doing: directory, change stream, queues, workers, targets."""
        return overview(current_app.extensions["bridge"])
