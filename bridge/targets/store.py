"""Targets in Redis, secrets encrypted at rest.

Keys::

    {p}:targets            hash id -> configuration JSON (secrets encrypted)
    {p}:targets:names      hash casefolded name -> id (names are unique)
    {p}:targets:version    a fresh random value on every change; processes reload when it moves
                           (random, not a counter: a wiped or restored Redis cannot repeat it)
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import redis

from bridge.directory.ids import new_id
from bridge.directory.stored import as_text
from bridge.errors import Conflict, NotFound
from bridge.runtime import clock
from bridge.scim.resource_types import ResourceType
from bridge.targets.mapping import MappingError, parse_mapping
from bridge.targets.model import SECRET_FIELDS, Target, merged
from bridge.targets.secrets import SecretBox


class TargetNotFound(NotFound):
    """No target with that id or name (or it was deleted meanwhile)."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no target {ref!r}")
        self.ref = ref


class TargetConflict(Conflict):
    """Another target has that name."""


class TargetStore:
    """Create, read, update and delete target configurations."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        secrets: SecretBox | None,
        resource_types: dict[str, ResourceType],
    ) -> None:
        self.redis = client
        self.key = f"{prefix}:targets"
        self.names_key = f"{prefix}:targets:names"
        self.version_key = f"{prefix}:targets:version"
        self.secrets = secrets
        self.resource_types = resource_types
        self._cache: tuple[str, dict[str, Target]] | None = None

    # --- reads ----------------------------------------------------------------------------
    def configs(self) -> list[dict[str, Any]]:
        """Every stored configuration (secrets still encrypted), by name."""
        raw = self.redis.hvals(self.key)
        return sorted((orjson.loads(v) for v in raw), key=lambda c: c["name"].casefold())

    def config(self, target_id: str) -> dict[str, Any]:
        """One target's stored configuration, secrets decrypted."""
        raw = self.redis.hget(self.key, target_id)
        if raw is None:
            raise TargetNotFound(target_id)
        config: dict[str, Any] = orjson.loads(raw)
        return config

    def get(self, target_id: str) -> Target:
        """A target ready to deliver to: secrets decrypted, mappings parsed."""
        return Target.from_config(self._decrypted(self.config(target_id)), self.resource_types)

    def all(self) -> list[Target]:
        """Every target, ready for delivery."""
        return [Target.from_config(self._decrypted(c), self.resource_types) for c in self.configs()]

    def current(self, version: str | None = None) -> dict[str, Target]:
        """Every target by id, parsed once per configuration version (one GET when unchanged,
        none when the caller read the ``version`` already, with something else)."""
        if version is None:
            version = self.version()
        if self._cache is None or self._cache[0] != version:
            self._cache = (version, {t.id: t for t in self.all()})
        return self._cache[1]

    def cached(self, target_id: str, version: str | None = None) -> Target:
        """A target from :meth:`current`; TargetNotFound when it does not exist."""
        target = self.current(version).get(target_id)
        if target is None:
            raise TargetNotFound(target_id)
        return target

    def version(self) -> str:
        """A stamp that changes whenever any target's configuration does."""
        value = self.redis.get(self.version_key)
        return as_text(value) if value else ""

    def resolve(self, name_or_id: str) -> str:
        """The id of a target named or identified by ``name_or_id``."""
        if self.redis.hexists(self.key, name_or_id):
            return name_or_id
        found = self.redis.hget(self.names_key, name_or_id.casefold())
        if found is None:
            raise TargetNotFound(name_or_id)
        return as_text(found)

    # --- writes ---------------------------------------------------------------------------
    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new target from validated input; returns its stored configuration."""
        now = _now()
        config = {"id": new_id(), **data, "created": now, "updated": now}
        self._check(config)
        self._save(config, old_name=None)
        return self.config(config["id"])

    def update(self, target_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply validated partial changes; secrets not given are kept."""
        old = self._decrypted(self.config(target_id))
        config = {**merged(old, changes), "updated": _now()}
        self._check(config)
        self._save(config, old_name=old["name"])
        return self.config(target_id)

    def delete(self, target_id: str) -> None:
        """Delete a target's configuration."""
        config = self.config(target_id)
        with self.redis.pipeline() as pipe:
            pipe.hdel(self.key, target_id)
            pipe.hdel(self.names_key, config["name"].casefold())
            pipe.set(self.version_key, uuid.uuid4().hex)
            pipe.execute()

    def _check(self, config: dict[str, Any]) -> None:
        try:
            parse_mapping(config.get("user_mapping"), self.resource_types["User"])
            parse_mapping(config.get("group_mapping"), self.resource_types["Group"])
        except MappingError as exc:
            raise ValueError(f"mapping: {exc}") from exc

    def _save(self, config: dict[str, Any], old_name: str | None) -> None:
        stored = self._encrypted(config)
        name = config["name"].casefold()
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.names_key)  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.watch unannotated
                    owner = pipe.hget(self.names_key, name)
                    if owner is not None and as_text(owner) != config["id"]:
                        raise TargetConflict(f"a target named {config['name']!r} exists")
                    pipe.multi()
                    if old_name is not None and old_name.casefold() != name:
                        pipe.hdel(self.names_key, old_name.casefold())
                    pipe.hset(self.names_key, name, config["id"])
                    pipe.hset(self.key, config["id"], orjson.dumps(stored))
                    pipe.set(self.version_key, uuid.uuid4().hex)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    # --- secrets --------------------------------------------------------------------------
    def _box(self) -> SecretBox:
        if self.secrets is None:
            raise ValueError("BRIDGE_SECRET_KEYS is not set: target secrets cannot be stored")
        return self.secrets

    def _encrypted(self, config: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = orjson.loads(orjson.dumps(config))
        for section, name in SECRET_FIELDS:
            holder = out.get(section) if section else out
            if isinstance(holder, dict) and holder.get(name):
                holder[name] = self._box().encrypt(holder[name])
        return out

    def _decrypted(self, config: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = orjson.loads(orjson.dumps(config))
        for section, name in SECRET_FIELDS:
            holder = out.get(section) if section else out
            if isinstance(holder, dict) and holder.get(name):
                holder[name] = self._box().decrypt(holder[name])
        return out


def _now() -> str:
    return clock.now()
