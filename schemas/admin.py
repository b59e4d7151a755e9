"""Marshmallow schemas of the admin API: targets, deliveries, replays.

Secrets (``auth.token``, ``auth.client_secret``, ``signing_secret``) are ``load_only``:
they can be written, never read back. Checks that need the app's resource types (SCIM
filters, attribute mappings) are made by :mod:`bridge.admin.targets`.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from bridge.delivery.deliveries import LOG_LENGTH
from bridge.targets.model import DEPROVISION_MODES

KINDS = ("scim", "webhook")
RESOURCES = ("users", "groups")
Partial = bool | Sequence[str] | Set[str] | None
"""What marshmallow passes a schema validator as ``partial``: whether (or which) fields
may be missing, as on PATCH."""

ITEM = r"^(user|group):\S+$"
"""A parked delivery's item: ``user:<id>`` or ``group:<id>``."""


class AuthSchema(Schema):
    """How the bridge authenticates to a target. Secrets are write-only."""

    class Meta:
        """Unknown fields are ignored rather than refused."""

        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(["none", "bearer", "oauth2"]))
    token = fields.String(load_only=True, validate=validate.Length(min=1))
    token_url = fields.Url(require_tld=False, schemes={"http", "https"})
    client_id = fields.String()
    client_secret = fields.String(load_only=True, validate=validate.Length(min=1))
    scope = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _complete(self, data: dict[str, Any], partial: Partial = False, **_: Any) -> None:
        # on PATCH, secrets left out are kept: the merged target is checked whole later
        if partial:
            return
        if data.get("type") == "bearer" and not data.get("token"):
            raise ValidationError({"token": ["a bearer token is required"]})
        if data.get("type") == "oauth2":
            missing = [k for k in ("token_url", "client_id", "client_secret") if not data.get(k)]
            if missing:
                raise ValidationError({k: ["required for oauth2"] for k in missing})


class ScopeSchema(Schema):
    """Who the target receives: everyone, members of some groups, or a SCIM filter."""

    class Meta:
        """Unknown fields are ignored rather than refused."""

        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(["all", "groups", "filter"]))
    groups = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    filter = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _complete(self, data: dict[str, Any], partial: Partial = False, **_: Any) -> None:
        if partial:
            return
        if data.get("type") == "groups" and not data.get("groups"):
            raise ValidationError({"groups": ["list at least one group id"]})
        if data.get("type") == "filter" and not data.get("filter"):
            raise ValidationError({"filter": ["a SCIM filter is required"]})


class DeletionGuardSchema(Schema):
    """More than ``max`` deprovisions within ``window_seconds`` wait for an admin."""

    class Meta:
        """Unknown fields are ignored rather than refused."""

        unknown = EXCLUDE

    max = fields.Integer(load_default=100, validate=validate.Range(min=1))
    window_seconds = fields.Integer(load_default=3600, validate=validate.Range(min=1))


class TargetStatusSchema(Schema):
    """How a target is doing: breaker, parked deliveries, delivery counters."""

    breaker = fields.String(metadata={"description": "closed, or open (quarantined)"})
    failures = fields.Integer(metadata={"description": "consecutive failed deliveries"})
    opened_at = fields.String(allow_none=True)
    dead = fields.Integer(metadata={"description": "dead letters waiting for a replay"})
    held = fields.Integer(metadata={"description": "deliveries held by the breaker or guard"})
    stats = fields.Dict(keys=fields.String(), values=fields.Integer())


class TargetSchema(Schema):
    """A downstream application that receives the directory's changes."""

    class Meta:
        """Unknown fields are ignored; fields are dumped in the order declared here."""

        unknown = EXCLUDE
        ordered = True

    id = fields.String(dump_only=True)
    name = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=100),
            validate.Regexp(r"^[^/\s](?:[^/]*[^/\s])?$", error="no '/', no surrounding spaces"),
        ],
    )
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    auth = fields.Nested(AuthSchema, load_default=lambda: {"type": "none"})
    signing_secret = fields.String(
        load_only=True, validate=validate.Regexp(r"^whsec_[A-Za-z0-9+/=]+$")
    )
    resources = fields.List(
        fields.String(validate=validate.OneOf(RESOURCES)),
        load_default=lambda: list(RESOURCES),
        validate=validate.Length(min=1),
    )
    user_mapping = fields.Dict(load_default=None, allow_none=True)
    group_mapping = fields.Dict(load_default=None, allow_none=True)
    scope = fields.Nested(ScopeSchema, load_default=lambda: {"type": "all"})
    deprovision = fields.String(load_default="disable", validate=validate.OneOf(DEPROVISION_MODES))
    concurrency = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=64),
        metadata={"description": "delivery jobs of this target queued or running at once"},
    )
    enabled = fields.Boolean(load_default=True)
    shadow = fields.Boolean(load_default=False)
    deletion_guard = fields.Nested(
        DeletionGuardSchema, load_default=lambda: {"max": 100, "window_seconds": 3600}
    )
    created = fields.String(dump_only=True)
    updated = fields.String(dump_only=True)
    status = fields.Nested(TargetStatusSchema, dump_only=True)

    @validates_schema
    def _webhook_secret(self, data: dict[str, Any], partial: Partial = False, **_: Any) -> None:
        if data.get("kind") == "webhook" and not data.get("signing_secret") and not partial:
            raise ValidationError(
                {"signing_secret": ["webhook targets need a signing secret (whsec_…)"]}
            )


class TargetChangesSchema(TargetSchema):
    """A PATCH body: any of a target's fields; secrets left out are kept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)


class DeliveryQuerySchema(Schema):
    """How many of a target's latest delivery log entries to list."""

    class Meta:
        """Unknown fields are ignored rather than refused."""

        unknown = EXCLUDE

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=LOG_LENGTH))


class DeliverySchema(Schema):
    """One entry of a target's delivery log, newest first."""

    at = fields.String()
    kind = fields.String()
    id = fields.String()
    action = fields.String(allow_none=True)
    outcome = fields.String()
    status = fields.Integer(allow_none=True)
    attempts = fields.Integer()
    latency_ms = fields.Float(allow_none=True)
    error = fields.String(allow_none=True)
    payload = fields.Dict(allow_none=True, metadata={"description": "shadow mode: what was due"})
    members_added = fields.List(fields.String())
    members_removed = fields.List(fields.String())


class FailedDeliverySchema(Schema):
    """A parked delivery: a dead letter (``failed``) or a held one (``circuit``, ``guard``)."""

    item = fields.Function(lambda e: f"{e['kind']}:{e['id']}")
    kind = fields.String()
    id = fields.String()
    reason = fields.String()
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    at = fields.String()


class ReplaySchema(Schema):
    """Which parked deliveries to act on: all (no body or no ``items``), or these."""

    class Meta:
        """Unknown fields are ignored rather than refused."""

        unknown = EXCLUDE

    items = fields.List(
        fields.String(validate=validate.Regexp(ITEM, error="expected user:<id> or group:<id>")),
        load_default=None,
        allow_none=True,
    )


class ReplayResultSchema(Schema):
    """How many parked deliveries were queued again."""

    replayed = fields.Integer()


class DiscardResultSchema(Schema):
    """How many parked deliveries were dropped."""

    discarded = fields.Integer()


class SyncResultSchema(Schema):
    """What a full sync of one target queued."""

    enqueued = fields.Integer(metadata={"description": "users and groups queued for the target"})


class CheckResultSchema(Schema):
    """The outcome of probing a target."""

    ok = fields.Boolean()
    status = fields.Integer(allow_none=True)
    error = fields.String()


class ResyncStartSchema(Schema):
    """Start a resync: Graph → directory, directory → targets, or both."""

    class Meta:
        """Unknown fields are ignored rather than refused."""

        unknown = EXCLUDE

    mode = fields.String(load_default="both", validate=validate.OneOf(["graph", "targets", "both"]))
    target = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "one target (id or name); all when omitted"},
    )
    dry_run = fields.Boolean(
        load_default=False, metadata={"description": "report drift, change nothing"}
    )
    full = fields.Boolean(
        load_default=False, metadata={"description": "read everything, not only what changed"}
    )


class ResyncRunSchema(Schema):
    """A resync run: phase, progress (done/total), drift counts, errors."""

    id = fields.String()
    scope = fields.String()
    mode = fields.String()
    target = fields.String(allow_none=True)
    dry_run = fields.Boolean()
    full = fields.Boolean()
    status = fields.String(
        metadata={
            "description": "queued, running, awaiting_confirmation, completed, "
            "completed_with_errors, failed, cancelled"
        }
    )
    phase = fields.String()
    done = fields.Integer()
    total = fields.Integer()
    drift = fields.Dict()
    errors = fields.List(fields.String())
    enqueued = fields.Integer()
    deprovisioned = fields.Integer()
    started = fields.String()
    finished = fields.String(allow_none=True)
    cancel = fields.Boolean()


class ResyncStatusSchema(Schema):
    """The running resync, deprovisions awaiting confirmation, and past runs."""

    current = fields.Nested(ResyncRunSchema, allow_none=True)
    pending_deprovisions = fields.Integer()
    history = fields.List(fields.Nested(ResyncRunSchema))


class ReconcileObjectSchema(Schema):
    """Reconcile one user (id or userPrincipalName) or group (id) with Entra now."""

    class Meta:
        """Unknown fields are ignored rather than refused."""

        unknown = EXCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(["user", "group"]))
    key = fields.String(required=True, validate=validate.Length(min=1))
    dry_run = fields.Boolean(load_default=False)


class ReconcileReportSchema(Schema):
    """The outcome of reconciling one object: status, drift found, errors."""

    status = fields.String()
    drift = fields.Dict()
    errors = fields.List(fields.String())
    done = fields.Integer()


class OverviewSchema(Schema):
    """Directory size, change stream, queues, workers, targets and the last resync."""

    directory = fields.Dict()
    changes = fields.Dict(
        metadata={
            "description": "the change stream: length, entries read but not yet handed "
            "over (pending), age of the oldest entry, dispatchers alive, and its state "
            "(idle, draining or stalled), as /readyz reports it"
        }
    )
    queues = fields.Dict(
        metadata={
            "description": "per queue: queued, waiting (for a place in their target's lane), "
            "running, scheduled (delayed retries), failed jobs"
        }
    )
    workers = fields.List(fields.Dict())
    targets = fields.List(fields.Dict())
    resync = fields.Nested(ResyncRunSchema, allow_none=True)
    graph_configured = fields.Boolean()
