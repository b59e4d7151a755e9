"""``/admin/idps``: identity providers, managed like targets (secrets write-only)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from bridge.sso.idp_admin import IdpAdmin
from schemas.sso import IdpChangesSchema, IdpSchema

blp = Blueprint(
    "admin_idps", __name__, url_prefix="/admin", description="Identity providers (JIT sign-in)."
)


def service() -> IdpAdmin:
    """The IdP service over the app's services, with the URL the bridge is reached at."""
    state = current_app.extensions["bridge"]
    return IdpAdmin.of(state, state.settings.public_base_url or request.host_url.rstrip("/"))


@blp.route("/idps")
class Idps(MethodView):
    """The collection of identity providers."""

    @blp.response(200, IdpSchema(many=True))
    def get(self) -> Any:
        """List identity providers (secrets are never returned)."""
        return service().all()

    @blp.arguments(IdpSchema)
    @blp.response(201, IdpSchema)
    @blp.alt_response(409, description="Name taken, or BRIDGE_SECRET_KEYS not set")
    def post(self, data: dict[str, Any]) -> Any:
        """Add an identity provider, from explicit settings or federation metadata XML."""
        return service().create(data)


@blp.route("/idps/<idp>")
class IdpResource(MethodView):
    """One identity provider, by id or name."""

    @blp.response(200, IdpSchema)
    def get(self, idp: str) -> Any:
        """Show an identity provider (by id or name)."""
        return service().show(idp)

    @blp.arguments(IdpChangesSchema)
    @blp.response(200, IdpSchema)
    def patch(self, changes: dict[str, Any], idp: str) -> Any:
        """Change some settings (certificates for a rollover, metadata, allow-list, modes);
        a secret not sent is kept."""
        return service().update(idp, changes)

    @blp.response(204)
    def delete(self, idp: str) -> None:
        """Remove an identity provider; its sign-ins stop at once."""
        service().delete(idp)


@blp.route("/idps/<idp>/refresh")
class IdpRefresh(MethodView):
    """Reading the IdP's federation metadata URL again (a certificate rollover)."""

    @blp.response(200, IdpSchema)
    @blp.alt_response(502, description="The metadata URL cannot be read; the IdP keeps its own")
    def post(self, idp: str) -> Any:
        """Refresh entity id, sign-on URL and certificates from ``metadata_url`` now."""
        return service().refresh(idp)


@blp.route("/idps/<idp>/metadata")
class IdpSpMetadata(MethodView):
    """The SAML SP metadata to give the IdP (Entra's enterprise application)."""

    @blp.response(200)
    def get(self, idp: str) -> Response:
        """Our SAML SP metadata for this IdP (XML)."""
        return Response(service().metadata(idp), mimetype="application/samlmetadata+xml")
