"""Marshmallow schemas of the admin API: targets, deliveries, replays."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

KINDS = ("scim", "webhook")
RESOURCES = ("users", "groups")
DEPROVISION_MODES = ("disable", "delete")


class AuthSchema(Schema):
    """How the bridge authenticates to a target. Secrets are write-only."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(["none", "bearer", "oauth2"]))
    token = fields.String(load_only=True, validate=validate.Length(min=1))
    token_url = fields.Url(require_tld=False, schemes={"http", "https"})
    client_id = fields.String()
    client_secret = fields.String(load_only=True, validate=validate.Length(min=1))
    scope = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _complete(self, data, **_):
        if data["type"] == "bearer" and not data.get("token"):
            raise ValidationError({"token": ["a bearer token is required"]})
        if data["type"] == "oauth2":
            missing = [k for k in ("token_url", "client_id", "client_secret") if not data.get(k)]
            if missing:
                raise ValidationError({k: ["required for oauth2"] for k in missing})


class ScopeSchema(Schema):
    """Who the target receives: everyone, members of some groups, or a SCIM filter."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(["all", "groups", "filter"]))
    groups = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    filter = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _complete(self, data, **_):
        if data["type"] == "groups" and not data.get("groups"):
            raise ValidationError({"groups": ["list at least one group id"]})
        if data["type"] == "filter" and not data.get("filter"):
            raise ValidationError({"filter": ["a SCIM filter is required"]})


class DeletionGuardSchema(Schema):
    """More than ``max`` deprovisions within ``window_seconds`` wait for an admin."""

    max = fields.Integer(load_default=100, validate=validate.Range(min=1))
    window_seconds = fields.Integer(load_default=3600, validate=validate.Range(min=1))


class TargetSchema(Schema):
    """A downstream application that receives the directory's changes."""

    class Meta:
        unknown = EXCLUDE
        ordered = True

    id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    auth = fields.Nested(AuthSchema, load_default=lambda: {"type": "none"})
    signing_secret = fields.String(load_only=True, validate=validate.Regexp(r"^whsec_[A-Za-z0-9+/=]+$"))
    resources = fields.List(
        fields.String(validate=validate.OneOf(RESOURCES)),
        load_default=lambda: list(RESOURCES),
        validate=validate.Length(min=1),
    )
    user_mapping = fields.Dict(load_default=None, allow_none=True)
    group_mapping = fields.Dict(load_default=None, allow_none=True)
    scope = fields.Nested(ScopeSchema, load_default=lambda: {"type": "all"})
    deprovision = fields.String(load_default="disable", validate=validate.OneOf(DEPROVISION_MODES))
    enabled = fields.Boolean(load_default=True)
    shadow = fields.Boolean(load_default=False)
    deletion_guard = fields.Nested(DeletionGuardSchema, load_default=lambda: {"max": 100, "window_seconds": 3600})
    created = fields.String(dump_only=True)
    updated = fields.String(dump_only=True)
    status = fields.Dict(dump_only=True)

    @validates_schema
    def _webhook_secret(self, data, partial=False, **_):
        if data.get("kind") == "webhook" and not data.get("signing_secret") and not partial:
            raise ValidationError({"signing_secret": ["webhook targets need a signing secret (whsec_…)"]})


class DeliverySchema(Schema):
    """One entry of a target's delivery log."""

    at = fields.String()
    kind = fields.String()
    id = fields.String()
    action = fields.String()
    outcome = fields.String()
    status = fields.Integer(allow_none=True)
    attempts = fields.Integer()
    latency_ms = fields.Float(allow_none=True)
    error = fields.String(allow_none=True)


class FailedDeliverySchema(Schema):
    kind = fields.String()
    id = fields.String()
    reason = fields.String()
    error = fields.String(allow_none=True)
    attempts = fields.Integer()
    at = fields.String()


class ReplaySchema(Schema):
    """Which held deliveries to send again: all, or some resources."""

    class Meta:
        unknown = EXCLUDE

    items = fields.List(fields.String(), load_default=None, allow_none=True)


class ReplayResultSchema(Schema):
    replayed = fields.Integer()
