"""Identity providers in Redis, their secrets encrypted at rest: the OIDC client secret
and the SP's private keys (signing AuthnRequests, decrypting assertions).

Keys::

    {p}:sso:idps           hash id -> configuration JSON (SECRET_FIELDS encrypted)
    {p}:sso:idps:names     hash casefolded name -> id (names are unique)
    {p}:sso:metadata:lock:{id}   a background metadata refresh started lately
    {p}:sso:stats:{name}   hash outcome -> count: created, updated, unchanged, kept,
                           refused:{reason} (the metrics of an IdP's sign-ins)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis

from bridge.directory.ids import new_id
from bridge.errors import Conflict, NotFound
from bridge.graph.links import text
from bridge.runtime import clock
from bridge.targets.secrets import SecretBox

SECRET_FIELDS = ("client_secret", "sp_signing_key", "sp_encryption_key")
"""Configuration fields stored encrypted and never returned (``has_{field}`` says whether
one is set)."""


class IdpNotFound(NotFound):
    """No identity provider with that id or name."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no identity provider {ref!r}")
        self.ref = ref


class IdpConflict(Conflict):
    """Another identity provider has that name."""


@dataclass(frozen=True)
class Idp:
    """One identity provider as sign-ins use it (secrets decrypted)."""

    id: str
    name: str
    protocol: str
    config: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.config[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A setting, or ``default`` when the IdP has none."""
        return self.config.get(key, default)


class IdpStore:
    """Create, read and delete identity provider configurations."""

    def __init__(self, client: redis.Redis, prefix: str, secrets: SecretBox | None) -> None:
        self.redis = client
        self.key = f"{prefix}:sso:idps"
        self.names_key = f"{prefix}:sso:idps:names"
        self.stats_prefix = f"{prefix}:sso:stats:"
        self.lock_prefix = f"{prefix}:sso:metadata:lock:"
        self.secrets = secrets

    def metadata_lock_key(self, idp_id: str) -> str:
        """Held while (and for a while after) a background metadata refresh of the IdP runs."""
        return f"{self.lock_prefix}{idp_id}"

    def configs(self) -> list[dict[str, Any]]:
        """Every stored configuration (secrets still encrypted), by name."""
        return sorted(
            (orjson.loads(v) for v in self.redis.hvals(self.key)),
            key=lambda c: c["name"].casefold(),
        )

    def config(self, idp_id: str) -> dict[str, Any]:
        """One stored configuration by id (secrets still encrypted); IdpNotFound else."""
        raw = self.redis.hget(self.key, idp_id)
        if raw is None:
            raise IdpNotFound(idp_id)
        config: dict[str, Any] = orjson.loads(raw)
        return config

    def resolve(self, name_or_id: str) -> str:
        """The id of the IdP named or identified by ``name_or_id``."""
        found = self.redis.hget(self.names_key, name_or_id.casefold())
        if found is not None:
            return text(found)
        if self.redis.hexists(self.key, name_or_id):
            return name_or_id
        raise IdpNotFound(name_or_id)

    def get(self, name_or_id: str) -> Idp:
        """An IdP ready for a sign-in: secrets decrypted."""
        config = self.decrypted(self.resolve(name_or_id))
        return Idp(config["id"], config["name"], config["protocol"], config)

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new IdP from validated input; returns its stored configuration."""
        now = clock.now()
        config = {"id": new_id(), **data, "created": now, "updated": now}
        stored = dict(config)
        for name in SECRET_FIELDS:
            if stored.get(name):
                stored[name] = self._box().encrypt(stored[name])
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.names_key)  # type: ignore[no-untyped-call]  # redis-py's Pipeline.watch is untyped
                    if pipe.hexists(self.names_key, config["name"].casefold()):
                        raise IdpConflict(f"an identity provider named {config['name']!r} exists")
                    pipe.multi()
                    pipe.hset(self.names_key, config["name"].casefold(), config["id"])
                    pipe.hset(self.key, config["id"], orjson.dumps(stored))
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        return self.config(config["id"])

    def update(self, idp_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply validated changes (not the name); secrets not given are kept."""
        stored = self.config(idp_id)
        now = clock.now()
        for name in SECRET_FIELDS:
            if changes.get(name):
                changes = {**changes, name: self._box().encrypt(changes[name])}
        config = {**stored, **changes, "id": idp_id, "name": stored["name"], "updated": now}
        self.redis.hset(self.key, idp_id, orjson.dumps(config))
        return self.config(idp_id)

    def decrypted(self, idp_id: str) -> dict[str, Any]:
        """A stored configuration with its secrets in the clear (to check a change whole)."""
        config = self.config(idp_id)
        for name in SECRET_FIELDS:
            if config.get(name):
                config[name] = self._box().decrypt(config[name])
        return config

    def delete(self, idp_id: str) -> None:
        """Remove the IdP, its name and its sign-in counters in one transaction."""
        config = self.config(idp_id)
        with self.redis.pipeline() as pipe:
            pipe.hdel(self.key, idp_id)
            pipe.hdel(self.names_key, config["name"].casefold())
            pipe.delete(self.stats_key(config["name"]))
            pipe.execute()

    # --- metrics --------------------------------------------------------------------------
    def stats_key(self, name: str) -> str:
        """The hash counting IdP ``name``'s sign-ins by outcome."""
        return f"{self.stats_prefix}{name.casefold()}"

    def count(self, name: str, outcome: str) -> None:
        """One more sign-in of IdP ``name`` with ``outcome``."""
        self.redis.hincrby(self.stats_key(name), outcome, 1)

    def stats(self, name: str) -> dict[str, int]:
        """IdP ``name``'s sign-ins by outcome."""
        return {text(k): int(v) for k, v in self.redis.hgetall(self.stats_key(name)).items()}

    def _box(self) -> SecretBox:
        if self.secrets is None:
            raise ValueError("BRIDGE_SECRET_KEYS is not set: IdP secrets cannot be stored")
        return self.secrets


def public_view(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration without its secrets (``has_client_secret`` etc. say which are set)."""
    view = {k: v for k, v in config.items() if k not in SECRET_FIELDS}
    if config.get("protocol") == "oidc":
        view["has_client_secret"] = bool(config.get("client_secret"))
    else:
        view["has_sp_signing_key"] = bool(config.get("sp_signing_key"))
        view["has_sp_encryption_key"] = bool(config.get("sp_encryption_key"))
    return view
