"""Schemas of the SCIM audit trail (``GET /admin/audit``)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from bridge.observability.audit_log import parse_since

MAX_LIMIT = 1000


class AuditQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[1-5]([0-9]{2}|xx)$", error="a status (404) or class (4xx)"),
    )
    resource = fields.String(
        load_default=None,
        validate=validate.Length(max=256),
        metadata={
            "description": "a resource id, a resource type (Users), a token name, "
            "signin (JIT sign-ins) or an IdP's name"
        },
    )
    since = fields.String(
        load_default=None,
        metadata={"description": "an ISO 8601 time, or an age: 30s, 15m, 2h, 1d"},
    )
    request_id = fields.String(load_default=None, validate=validate.Length(max=128))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_LIMIT))

    @validates("since")
    def _since(self, value: str | None, **_: object) -> None:
        try:
            parse_since(value)
        except (ValueError, OverflowError) as exc:
            raise ValidationError("an ISO 8601 time, or an age such as 15m") from exc


class AuditEntrySchema(Schema):
    """One SCIM request: what was asked, by whom, and what was answered (secrets masked)."""

    entry = fields.String(metadata={"description": "the audit stream's entry id"})
    at = fields.String()
    method = fields.String()
    path = fields.String()
    query = fields.String(allow_none=True)
    status = fields.Integer()
    latency_ms = fields.Float()
    resource_type = fields.String()
    resource_id = fields.String(allow_none=True)
    token_id = fields.String(allow_none=True)
    token_name = fields.String(allow_none=True)
    client_ip = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    request_body = fields.String(allow_none=True)
    response_body = fields.String(allow_none=True)
    # JIT sign-ins (kind "signin"): which IdP, who, and what became of it
    kind = fields.String(allow_none=True)
    idp = fields.String(allow_none=True)
    protocol = fields.String(allow_none=True)
    user_name = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
