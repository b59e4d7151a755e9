"""Identity provider administration, shared by the /admin API and the ``idps`` CLI.

Input arrives loaded by :class:`schemas.sso.IdpSchema`; this module reads federation
metadata (given, or fetched from ``metadata_url``), checks certificates and the SP's key
pairs, needs a key for secrets, and raises the admin errors of :mod:`bridge.admin.targets`
(their ``status`` is the API's answer). Only public views leave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from bridge.admin.targets import NO_SECRET_KEYS, SecretsUnavailable
from bridge.errors import BridgeError, InvalidFields
from bridge.runtime import clock
from bridge.runtime.services import Services, secret_box
from bridge.sso import metadata_fetch
from bridge.sso.idps import IdpStore, public_view
from bridge.sso.metadata import IdpMetadata, MetadataError, pem_of, read_idp_metadata, sp_metadata
from bridge.sso.saml_sp import sp_urls
from bridge.sso.sp_keys import SpKeyError, check_pair
from bridge.targets.secrets import SecretError
from schemas.sso import IdpSchema

KEY_PAIRS = (
    ("sp_signing_key", "sp_signing_certificate"),
    ("sp_encryption_key", "sp_encryption_certificate"),
)
"""The SP's private keys and the certificate each belongs to."""


class MetadataUnavailable(BridgeError):
    """The IdP's metadata URL cannot be read or used now (the IdP keeps what it had)."""

    status = 502


def store_of(state: Services) -> IdpStore:
    """The IdP store over the process's Redis pool and secret keys."""
    return IdpStore(state.redis, state.settings.key_prefix, secret_box(state.settings))


@dataclass
class IdpAdmin:
    """Operations on identity providers."""

    idps: IdpStore
    base_url: str
    ca_bundle: str = ""
    """The CA file trusted for metadata URLs (BRIDGE_GRAPH_CA_BUNDLE), else certifi's."""

    @classmethod
    def of(cls, state: Services, base_url: str = "") -> IdpAdmin:
        """The service over the app's services; ``base_url`` overrides BRIDGE_PUBLIC_URL."""
        return cls(
            store_of(state),
            base_url or state.settings.public_base_url,
            state.settings.graph.ca_bundle,
        )

    def all(self) -> list[dict[str, Any]]:
        """Every IdP's public view, by name."""
        return [self._public(c) for c in self.idps.configs()]

    def show(self, ref: str) -> dict[str, Any]:
        """One IdP's public view, by id or name."""
        return self._public(self.idps.config(self.resolve(ref)))

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new IdP: metadata read into entity id, sign-on URL and certificates."""
        data = self._read(data, data["protocol"])
        self._check_keys(data)
        stored = self.idps.create(data)
        return self._public(stored)

    def update(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (IdpChangesSchema), e.g. new certificates for a rollover or new
        federation metadata; the IdP must still be complete afterwards."""
        idp_id = self.resolve(ref)
        old = self.idps.config(idp_id)
        changes = self._read(changes, old["protocol"], replace=True)
        if old["protocol"] == "saml":
            self._check_keys({**self._plain(idp_id), **changes})
        merged = {**old, **changes}
        for name in ("client_secret", "sp_signing_key", "sp_encryption_key"):
            if merged.get(name):
                merged[name] = "kept"  # encrypted: the schema only checks it is there
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
            source, found = self._metadata(metadata, data.get("metadata_url"), errors)
            if found is not None:
                read = metadata_fetch.metadata_fields(found)
                if source == "metadata_url":
                    read.update(metadata_fetched=clock.now(), metadata_error=None)
                data = {**data, **read} if replace else {**read, **data}
                if found.wants_signed_requests:
                    data["sign_requests"] = True  # the IdP refuses unsigned requests
            for _, cert_field in KEY_PAIRS:
                if data.get(cert_field):
                    try:
                        data[cert_field] = pem_of(data[cert_field])
                    except MetadataError as exc:
                        errors[cert_field] = [str(exc)]
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
        if any(data.get(k) for k in ("client_secret", "sp_signing_key", "sp_encryption_key")):
            if self.idps.secrets is None:
                raise SecretsUnavailable(NO_SECRET_KEYS)
        return data

    def _metadata(
        self, xml: str | None, url: str | None, errors: dict[str, list[str]]
    ) -> tuple[str, IdpMetadata | None]:
        """The federation metadata given (XML) or at ``url``; errors noted by field."""
        try:
            if xml:
                return "metadata_xml", read_idp_metadata(xml)
            if url:
                return "metadata_url", metadata_fetch.read_metadata_url(url, self.ca_bundle)
        except MetadataError as exc:
            errors["metadata_xml" if xml else "metadata_url"] = [str(exc)]
        return "", None

    def _plain(self, idp_id: str) -> dict[str, Any]:
        """The stored configuration with its keys decrypted, to check a change whole."""
        try:
            return self.idps.decrypted(idp_id)
        except (ValueError, SecretError) as exc:
            raise SecretsUnavailable(NO_SECRET_KEYS) from exc

    def _check_keys(self, config: dict[str, Any]) -> None:
        """Each SP key with its certificate, the key the certificate's; the settings that
        need a key have one. ``config`` holds the keys in the clear."""
        if config.get("protocol") != "saml":
            return
        errors: dict[str, list[str]] = {}
        for key_field, cert_field in KEY_PAIRS:
            key, cert = config.get(key_field), config.get(cert_field)
            if bool(key) != bool(cert):
                missing = cert_field if key else key_field
                errors[missing] = [f"required with {key_field if key else cert_field}"]
            elif key and cert:
                try:
                    check_pair(key, cert)
                except (SpKeyError, MetadataError) as exc:
                    errors[key_field] = [str(exc)]
        if config.get("sign_requests") and not config.get("sp_signing_key"):
            errors.setdefault("sp_signing_key", []).append("required to sign requests")
        if config.get("require_encryption") and not config.get("sp_encryption_key"):
            errors.setdefault("sp_encryption_key", []).append("required to require encryption")
        if errors:
            raise InvalidFields("invalid identity provider keys", details=errors)

    def refresh(self, ref: str) -> dict[str, Any]:
        """Read the IdP's metadata URL again now; its public view with ``changed``."""
        idp_id = self.resolve(ref)
        if not self.idps.config(idp_id).get("metadata_url"):
            raise InvalidFields(
                "the identity provider has no metadata URL",
                details={"metadata_url": ["set one to refresh from it"]},
            )
        try:
            config, changed = metadata_fetch.refresh(self.idps, idp_id, self.ca_bundle)
        except MetadataError as exc:
            raise MetadataUnavailable(f"metadata not refreshed: {exc}") from exc
        return {**self._public(config), "changed": changed}

    def refresh_all(self) -> list[tuple[str, str]]:
        """Refresh every IdP that has a metadata URL: (name, outcome) pairs, an outcome
        being ``changed``, ``unchanged`` or the error."""
        outcomes = []
        for config in self.idps.configs():
            if not config.get("metadata_url"):
                continue
            try:
                _, changed = metadata_fetch.refresh(self.idps, config["id"], self.ca_bundle)
            except MetadataError as exc:
                outcomes.append((config["name"], f"failed: {exc}"))
                continue
            outcomes.append((config["name"], "changed" if changed else "unchanged"))
        return outcomes

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
        return sp_metadata_of(self.base_url, config)

    def _public(self, config: dict[str, Any]) -> dict[str, Any]:
        view = public_view(config)
        view["stats"] = self.idps.stats(config["name"])
        if config["protocol"] == "saml" and self.base_url:
            urls = sp_urls(self.base_url, config)
            view["sp"] = {"entity_id": urls.entity_id, "acs_url": urls.acs_url}
        elif config["protocol"] == "oidc" and self.base_url:
            view["redirect_uri"] = f"{self.base_url}/sso/oidc/{config['name']}/callback"
        return view


def sp_metadata_of(base_url: str, config: Any) -> bytes:
    """Our SP metadata for one SAML IdP's configuration (or :class:`Idp`)."""
    urls = sp_urls(base_url, config)
    return sp_metadata(
        urls.entity_id,
        urls.acs_url,
        signing_certificate=config.get("sp_signing_certificate"),
        encryption_certificate=config.get("sp_encryption_certificate"),
        sign_requests=bool(config.get("sign_requests")),
    )
