"""Marshmallow schemas of identity providers (sign-in through Entra, SAML 2.0 or OIDC).

The OIDC ``client_secret``, the SP's private keys (``sp_signing_key``,
``sp_encryption_key``) and the federation ``metadata_xml`` are ``load_only``: secrets are
stored encrypted and never read back; the metadata (given, or fetched from
``metadata_url``) is read into ``entity_id``, ``sso_url`` and ``certificates``.
Certificates and keys are parsed, checked as pairs, and the metadata read by
:mod:`bridge.sso.idp_admin`, which answers 422 for what it cannot use.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from bridge.sso.metadata_fetch import DEFAULT_REFRESH_SECONDS, MIN_REFRESH_SECONDS
from bridge.sso.provision import MAPPABLE

PROTOCOLS = ("saml", "oidc")
UPDATE_MODES = ("each_login", "first_login", "never")
"""When a sign-in changes an existing user: on every sign-in, only on the user's first
sign-in through the bridge, or never (a new user is always created)."""

MAX_CERTIFICATES = 2
"""Signing certificates pinned at once: the current one and the next, for a rollover."""

MAX_CLOCK_SKEW_SECONDS = 600
MAX_WAIT_SECONDS = 30
"""Longest a sign-in may be held for the targets (a web thread waits meanwhile)."""
MAX_REFRESH_SECONDS = 30 * 86_400
MAX_PEM = 16384
"""Longest certificate or private key PEM accepted."""
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
"""An IdP's name is part of its URLs (``/sso/saml/{name}/acs``): letters, digits, ``._-``."""


class IdpSchema(Schema):
    """An identity provider whose sign-ins provision users just in time."""

    class Meta:
        unknown = EXCLUDE
        ordered = True

    id = fields.String(dump_only=True)
    name = fields.String(
        required=True,
        validate=validate.Regexp(NAME, error="letters, digits, '.', '_' or '-', at most 63"),
    )
    protocol = fields.String(required=True, validate=validate.OneOf(PROTOCOLS))
    # SAML: the IdP's entity id (Entra: https://sts.windows.net/{tenant}/), its sign-on URL
    # and its signing certificates (PEM), or the federation metadata XML carrying all three
    entity_id = fields.String(validate=validate.Length(min=1, max=1024))
    sso_url = fields.Url(require_tld=False, schemes={"https", "http"})
    certificates = fields.List(
        fields.String(validate=validate.Length(min=1, max=16384)),
        validate=validate.Length(max=MAX_CERTIFICATES),
    )
    metadata_xml = fields.String(load_only=True, validate=validate.Length(min=1, max=1 << 20))
    metadata_url = fields.Url(
        require_tld=False,
        schemes={"https"},
        allow_none=True,
        metadata={"description": "federation metadata URL (Entra: App Federation Metadata Url)"},
    )
    metadata_refresh_seconds = fields.Integer(
        load_default=DEFAULT_REFRESH_SECONDS,
        validate=validate.Range(min=MIN_REFRESH_SECONDS, max=MAX_REFRESH_SECONDS),
        metadata={"description": "read metadata_url again when the copy is this old"},
    )
    metadata_fetched = fields.String(dump_only=True, allow_none=True)
    metadata_checked = fields.String(dump_only=True, allow_none=True)
    metadata_error = fields.String(dump_only=True, allow_none=True)
    # SAML: our own keys. Signing: AuthnRequests (HTTP-Redirect binding), when
    # sign_requests is on. Encryption: the IdP encrypts assertions to this certificate.
    sign_requests = fields.Boolean(
        load_default=False,
        metadata={"description": "sign AuthnRequests (needs sp_signing_key and certificate)"},
    )
    sp_signing_key = fields.String(load_only=True, validate=validate.Length(min=1, max=MAX_PEM))
    sp_signing_certificate = fields.String(
        allow_none=True, validate=validate.Length(min=1, max=MAX_PEM)
    )
    has_sp_signing_key = fields.Boolean(dump_only=True)
    sp_encryption_key = fields.String(load_only=True, validate=validate.Length(min=1, max=MAX_PEM))
    sp_encryption_certificate = fields.String(
        allow_none=True, validate=validate.Length(min=1, max=MAX_PEM)
    )
    has_sp_encryption_key = fields.Boolean(dump_only=True)
    require_encryption = fields.Boolean(
        load_default=False,
        metadata={"description": "refuse assertions that are not encrypted to us"},
    )
    sp_entity_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=1024),
        metadata={
            "description": "our entity id (Entra: Identifier); default {base}/sso/saml/{name}"
        },
    )
    # OIDC: the authority (Entra: https://login.microsoftonline.com/{tenant}), the app's
    # client id and secret
    authority = fields.Url(require_tld=False, schemes={"https"})
    client_id = fields.String(validate=validate.Length(min=1, max=256))
    client_secret = fields.String(load_only=True, validate=validate.Length(min=1, max=1024))
    has_client_secret = fields.Boolean(dump_only=True)
    tenant_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "when set, a sign-in must carry this tenant id (tid)"},
    )
    allowed_redirects = fields.List(
        fields.Url(require_tld=False, schemes={"https", "http"}),
        load_default=list,
        metadata={"description": "URLs (and the paths below them) a sign-in may go on to"},
    )
    idp_initiated = fields.Boolean(load_default=False)
    update = fields.String(load_default="each_login", validate=validate.OneOf(UPDATE_MODES))
    match_username = fields.Boolean(
        load_default=True,
        metadata={"description": "link a sign-in to an existing user by userName"},
    )
    clock_skew_seconds = fields.Integer(
        load_default=120, validate=validate.Range(min=0, max=MAX_CLOCK_SKEW_SECONDS)
    )
    groups = fields.Boolean(
        load_default=False,
        metadata={"description": "the groups claim adds the user to the matching groups"},
    )
    groups_remove = fields.Boolean(
        load_default=False,
        metadata={"description": "a sign-in also removes memberships of Entra groups not named"},
    )
    claim_mapping = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.Length(min=1, max=512)),
        load_default=None,
        allow_none=True,
        metadata={"description": "SCIM path → claim name, over Entra's defaults"},
    )
    wait_seconds = fields.Float(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_WAIT_SECONDS),
        metadata={"description": "hold a new user's redirect until targets have it (0: off)"},
    )
    enabled = fields.Boolean(load_default=True)
    created = fields.String(dump_only=True)
    updated = fields.String(dump_only=True)
    sp = fields.Dict(
        dump_only=True,
        metadata={"description": "SAML: our entity id (Identifier) and ACS URL (Reply URL)"},
    )
    redirect_uri = fields.String(dump_only=True, metadata={"description": "OIDC: the callback"})
    changed = fields.Boolean(
        dump_only=True, metadata={"description": "refresh: whether the metadata changed"}
    )
    stats = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        dump_only=True,
        metadata={"description": "sign-ins by outcome: created, updated, refused:{reason}, …"},
    )

    @validates_schema
    def _mappable(self, data: dict[str, Any], **_: Any) -> None:
        unknown = sorted(set(data.get("claim_mapping") or {}) - MAPPABLE)
        if unknown:
            allowed = ", ".join(sorted(MAPPABLE))
            raise ValidationError(
                {"claim_mapping": [f"cannot map a claim to {unknown[0][:100]!r}; one of {allowed}"]}
            )

    @validates_schema
    def _complete(self, data: dict[str, Any], partial: bool = False, **_: Any) -> None:
        if partial:
            return
        if data.get("protocol") == "saml" and not (
            data.get("metadata_xml") or data.get("metadata_url")
        ):
            missing = [k for k in ("entity_id", "sso_url", "certificates") if not data.get(k)]
            if missing:
                raise ValidationError(
                    {
                        k: ["required for saml (or give metadata_xml or metadata_url)"]
                        for k in missing
                    }
                )
        if data.get("protocol") == "oidc":
            missing = [k for k in ("authority", "client_id", "client_secret") if not data.get(k)]
            if missing:
                raise ValidationError({k: ["required for oidc"] for k in missing})


class IdpChangesSchema(IdpSchema):
    """A PATCH body: any of an IdP's settings but its name and protocol (its URLs and
    Entra's configuration depend on them); a secret left out is kept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)

    @validates_schema
    def _fixed(self, data: dict[str, Any], **_: Any) -> None:
        fixed = [k for k in ("name", "protocol") if k in data]
        if fixed:
            raise ValidationError({k: ["cannot be changed: remove and add the IdP"] for k in fixed})
