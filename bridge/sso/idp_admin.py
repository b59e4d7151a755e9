"""Identity provider administration, shared by the /admin API and the ``idps`` CLI.

Input arrives loaded by :class:`schemas.sso.IdpSchema`; this module reads federation
metadata, checks certificates, needs a key for secrets, and raises the admin errors of
:mod:`bridge.admin.targets` (their ``status`` is the API's answer). Only public views leave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from bridge.admin.targets import NO_SECRET_KEYS, SecretsUnavailable
from bridge.errors import InvalidFields
from bridge.runtime.services import Services, secret_box
from bridge.sso.idps import IdpStore, public_view
from bridge.sso.metadata import MetadataError, pem_of, read_idp_metadata, sp_metadata
from bridge.sso.saml_sp import sp_urls
from schemas.sso import IdpSchema


def store_of(state: Services) -> IdpStore:
    """The IdP store over the process's Redis pool and secret keys."""
    return IdpStore(state.redis, state.settings.key_prefix, secret_box(state.settings))


@dataclass
class IdpAdmin:
    """Operations on identity providers."""

    idps: IdpStore
    base_url: str

    @classmethod
    def of(cls, state: Services, base_url: str = "") -> IdpAdmin:
        """The service over the app's services; ``base_url`` overrides BRIDGE_PUBLIC_URL."""
        return cls(store_of(state), base_url or state.settings.public_base_url)

    def all(self) -> list[dict[str, Any]]:
        """Every IdP's public view, by name."""
        return [self._public(c) for c in self.idps.configs()]

    def show(self, ref: str) -> dict[str, Any]:
        """One IdP's public view, by id or name."""
        return self._public(self.idps.config(self.resolve(ref)))

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new IdP: metadata read into entity id, sign-on URL and certificates."""
        data = self._read(data, data["protocol"])
        stored = self.idps.create(data)
        return self._public(stored)

    def update(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (IdpChangesSchema), e.g. new certificates for a rollover or new
        federation metadata; the IdP must still be complete afterwards."""
        idp_id = self.resolve(ref)
        old = self.idps.config(idp_id)
        changes = self._read(changes, old["protocol"], replace=True)
        merged = {**old, **changes}
        if old["protocol"] == "oidc":
            merged.setdefault("client_secret", "kept")  # the schema only checks it is there
        try:
            IdpSchema().load(merged)
        except ValidationError as exc:
            messages = exc.normalized_messages()  # type: ignore[no-untyped-call]  # marshmallow's helper is untyped
            raise InvalidFields(
                "the identity provider would be incomplete", details=messages
            ) from exc
        return self._public(self.idps.update(idp_id, changes))

    def _read(self, data: dict[str, Any], protocol: str, replace: bool = False) -> dict[str, Any]:
        """``data`` with federation metadata read into its fields and certificates as PEM;
        metadata fills only what is not given, unless ``replace`` (an update)."""
        data = dict(data)
        errors: dict[str, list[str]] = {}
        metadata = data.pop("metadata_xml", None)
        if protocol == "saml":
            if metadata:
                try:
                    found = read_idp_metadata(metadata)
                except MetadataError as exc:
                    errors["metadata_xml"] = [str(exc)]
                else:
                    read = {
                        "entity_id": found.entity_id,
                        "sso_url": found.sso_url,
                        "certificates": found.certificates,
                    }
                    data = {**data, **read} if replace else {**read, **data}
            if "certificates" in data:
                certs = []
                for n, cert in enumerate(data.get("certificates") or []):
                    try:
                        certs.append(pem_of(cert))
                    except MetadataError as exc:
                        errors.setdefault("certificates", []).append(f"{n}: {exc}")
                data["certificates"] = certs
        if errors:
            raise InvalidFields("invalid identity provider", details=errors)
        if data.get("client_secret") and self.idps.secrets is None:
            raise SecretsUnavailable(NO_SECRET_KEYS)
        return data

    def delete(self, ref: str) -> None:
        """Remove an IdP (by id or name) and its sign-in counters."""
        self.idps.delete(self.resolve(ref))

    def resolve(self, ref: str) -> str:
        """The id of the IdP with this id or name; IdpNotFound else."""
        return self.idps.resolve(ref)

    def metadata(self, ref: str) -> bytes:
        """Our SP metadata for a SAML IdP (what to upload to the Entra enterprise app)."""
        config = self.idps.config(self.resolve(ref))
        if config["protocol"] != "saml":
            raise InvalidFields(
                "not a SAML identity provider", details={"protocol": ["saml expected"]}
            )
        if not self.base_url:
            raise InvalidFields(
                "BRIDGE_PUBLIC_URL is not set: the ACS URL is unknown",
                details={"base_url": ["set BRIDGE_PUBLIC_URL"]},
            )
        urls = sp_urls(self.base_url, config)
        return sp_metadata(urls.entity_id, urls.acs_url)

    def _public(self, config: dict[str, Any]) -> dict[str, Any]:
        view = public_view(config)
        view["stats"] = self.idps.stats(config["name"])
        if config["protocol"] == "saml" and self.base_url:
            urls = sp_urls(self.base_url, config)
            view["sp"] = {"entity_id": urls.entity_id, "acs_url": urls.acs_url}
        elif config["protocol"] == "oidc" and self.base_url:
            view["redirect_uri"] = f"{self.base_url}/sso/oidc/{config['name']}/callback"
        return view
