"""Target and delivery administration, shared by the /admin API and the ``targets`` CLI.

Input arrives already loaded by :class:`schemas.admin.TargetSchema`; this module adds the
checks that need the app's state (SCIM filters and mappings against the resource types,
a key to encrypt secrets with) and raises the domain's errors (:mod:`bridge.errors`), which carry the
HTTP status the API answers with. Secrets never leave this module: every target returned
is a public view.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from bridge.delivery.deliveries import Deliveries
from bridge.delivery.jobs import Jobs, discard
from bridge.directory.ids import is_id
from bridge.directory.records import Directory
from bridge.errors import Conflict, InvalidFields
from bridge.observability.masking import mask_text
from bridge.runtime.services import Services
from bridge.scim.errors import ScimError
from bridge.scim.filter import parse_filter
from bridge.scim.filter_eval import check_filter
from bridge.scim.resource_types import ResourceType
from bridge.targets import signing
from bridge.targets.base import TargetError
from bridge.targets.connectors import build_connector, timeouts
from bridge.targets.http import Timeouts
from bridge.targets.mapping import MappingError, parse_mapping
from bridge.targets.model import SECRET_FIELDS, Target, public_view
from bridge.targets.model import merged as merge_changes
from bridge.targets.secrets import SecretError
from bridge.targets.store import TargetStore
from schemas.admin import TargetSchema

NO_SECRET_KEYS = (
    "BRIDGE_SECRET_KEYS is not set: target secrets cannot be stored or read. Set it to one "
    "or more Fernet keys (python -c 'from bridge.targets.secrets import SecretBox; "
    "print(SecretBox.generate_key())') on the web and worker processes, then retry."
)


class SecretsUnavailable(Conflict):
    """No key to encrypt or decrypt target secrets with (or the keys do not match)."""

    status = 409


@dataclass
class TargetAdmin:
    """Operations on targets and on their parked deliveries."""

    targets: TargetStore
    deliveries: Deliveries
    directory: Directory
    jobs: Jobs
    resource_types: dict[str, ResourceType]
    timeout: Timeouts

    @classmethod
    def of(cls, state: Services) -> TargetAdmin:
        """The service over a :class:`bridge.runtime.services.Services`."""
        s = state.settings
        return cls(
            state.targets,
            state.deliveries,
            state.directory,
            state.jobs,
            state.resource_types,
            timeouts(s.target_connect_timeout, s.target_read_timeout),
        )

    # --- targets --------------------------------------------------------------------------
    def all(self) -> list[dict[str, Any]]:
        """Every target, public view and status, by name."""
        return [self._public(config) for config in self.targets.configs()]

    def show(self, ref: str) -> dict[str, Any]:
        """One target's public view and status."""
        return self._public(self.targets.config(self.resolve(ref)))

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new target from TargetSchema-loaded ``data``; an enabled one is then sent
        every user and group already in the directory that its scope takes."""
        self._check(data)
        stored = self.targets.create(data)
        if stored.get("enabled", True):
            self._sync(stored)
        return self._public(stored)

    def update(self, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (loaded by TargetChangesSchema); secrets left out are kept.

        A change of what the target should hold (scope, resources, mappings, deprovision
        mode, where it is, or enabling it) queues a resync of the target, so that it holds
        exactly that: users who left the scope are deprovisioned, new ones provisioned."""
        target_id = self.resolve(ref)
        old = self._decrypted(target_id).config
        merged = merge_changes(old, changes)
        try:
            TargetSchema().load(merged)
        except ValidationError as exc:
            raise InvalidFields(
                "the target would be incomplete", details=_as_dict(exc.messages)
            ) from exc
        self._check(merged)
        stored = self.targets.update(target_id, changes)
        if stored.get("enabled", True) and _reshapes(old, stored):
            self._sync(stored)
        return self._public(stored)

    def delete(self, ref: str) -> None:
        """Remove a target and all its delivery bookkeeping; its queued jobs become no-ops."""
        target_id = self.resolve(ref)
        self.targets.delete(target_id)
        self.deliveries.forget(target_id)

    def resolve(self, ref: str) -> str:
        """The id of the target with id or name ``ref``."""
        return self.targets.resolve(ref)

    # --- actions --------------------------------------------------------------------------
    def check(self, ref: str) -> dict[str, Any]:
        """Probe the target now: ``{"ok": True, "status": ...}`` or ``{"ok": False, "error": ...}``."""
        connector = build_connector(self._decrypted(self.resolve(ref)), self.timeout)
        try:
            applied = connector.check()
        except TargetError as exc:
            return {"ok": False, "status": exc.status, "error": mask_text(str(exc))}
        finally:
            client = getattr(connector, "client", None)
            if client is not None:
                client.close()
        return {"ok": True, "status": applied.status}

    def sync(self, ref: str) -> int:
        """Queue every user and group for the target; returns how many."""
        config = self.targets.config(self.resolve(ref))
        if not config.get("enabled", True):
            raise Conflict("the target is disabled: enable it before syncing")
        return self._sync(config)

    def _sync(self, config: dict[str, Any]) -> int:
        return self.jobs.sync_target(
            self.directory, config["id"], concurrency=config.get("concurrency")
        )

    def log(self, ref: str, limit: int = 100) -> list[dict[str, Any]]:
        """Recent deliveries, newest first."""
        return self.deliveries.log(self.resolve(ref), limit)

    def parked(self, ref: str, which: str) -> list[dict[str, Any]]:
        """Dead letters (``dead``) or held deliveries (``held``), oldest first."""
        return self.deliveries.parked(self.resolve(ref), which)

    def replay_failed(self, ref: str, items: Iterable[str] | None = None) -> int:
        """Send dead letters again (all, or ``items``)."""
        config = self.targets.config(self.resolve(ref))
        return self.jobs.replay(
            self.deliveries, config["id"], "dead", items, concurrency=config.get("concurrency")
        )

    def approve(self, ref: str, items: Iterable[str] | None = None) -> int:
        """Release held deliveries: guard holds past the guard, circuit holds as they are."""
        config = self.targets.config(self.resolve(ref))
        concurrency: int | None = config.get("concurrency")
        chosen = None if items is None else set(items)
        guarded = self.jobs.replay(
            self.deliveries,
            config["id"],
            "held",
            chosen,
            reason="guard",
            bypass_guard=True,
            urgent=True,
            concurrency=concurrency,
        )
        return guarded + self.jobs.replay(
            self.deliveries, config["id"], "held", chosen, concurrency=concurrency
        )

    def reject(self, ref: str, items: Iterable[str] | None = None) -> int:
        """Drop held deliveries without sending them."""
        return discard(self.deliveries, self.resolve(ref), "held", items)

    # --- helpers --------------------------------------------------------------------------
    def status(self, target_id: str) -> dict[str, Any]:
        """Breaker state, parked counts and counters, in one round trip."""
        return self.deliveries.status(target_id)

    def _public(self, config: dict[str, Any]) -> dict[str, Any]:
        return {**public_view(config), "status": self.status(config["id"])}

    def _decrypted(self, target_id: str) -> Target:
        if self.targets.secrets is None and _has_secrets(self.targets.config(target_id)):
            raise SecretsUnavailable(NO_SECRET_KEYS)
        try:
            return self.targets.get(target_id)
        except SecretError as exc:
            raise SecretsUnavailable(
                "the target's secrets cannot be decrypted with BRIDGE_SECRET_KEYS: "
                "keep the key they were stored under in the list"
            ) from exc

    def _check(self, config: dict[str, Any]) -> None:
        """What the schema cannot check: filter, mappings, signing secret, a key for secrets."""
        errors: dict[str, object] = {}
        scope = config.get("scope") or {}
        strangers = [g for g in scope.get("groups") or [] if not is_id(g)]
        if scope.get("type") == "groups" and strangers:
            errors["scope"] = {"groups": [f"not a group id: {g[:60]!r}" for g in strangers[:5]]}
        if scope.get("type") == "filter":
            try:
                check_filter(parse_filter(scope.get("filter") or ""), self.resource_types["User"])
            except ScimError as exc:
                errors["scope"] = {"filter": [exc.detail or "invalid SCIM filter"]}
        for field, rtype in (("user_mapping", "User"), ("group_mapping", "Group")):
            try:
                parse_mapping(config.get(field), self.resource_types[rtype])
            except MappingError as exc:
                errors[field] = [str(exc)]
        if config.get("signing_secret"):
            try:
                signing.sign(config["signing_secret"], "check", 0, b"")
            except ValueError as exc:
                errors["signing_secret"] = [str(exc)]
        if errors:
            raise InvalidFields("invalid target", details=errors)
        if self.targets.secrets is None and _has_secrets(config):
            raise SecretsUnavailable(NO_SECRET_KEYS)


RESHAPING = ("kind", "url", "resources", "scope", "user_mapping", "group_mapping", "deprovision")
"""Settings whose change alters what a target should hold, or where it is held."""


def _reshapes(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a target must be resynced after changing from ``old`` to ``new``."""
    enabled = new.get("enabled", True) and not old.get("enabled", True)
    return enabled or any(old.get(k) != new.get(k) for k in RESHAPING)


def _has_secrets(config: dict[str, Any]) -> bool:
    for section, name in SECRET_FIELDS:
        holder = config.get(section) if section else config
        if isinstance(holder, dict) and holder.get(name):
            return True
    return False


def _as_dict(messages: Any) -> dict[str, Any]:
    return messages if isinstance(messages, dict) else {"_schema": messages}
