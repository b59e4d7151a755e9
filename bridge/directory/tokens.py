"""Bearer tokens: several at once (rotation), stored only as SHA-256 digests.

Two stores use this: the SCIM tokens Entra authenticates with (hash ``tokens``) and the
admin API's tokens (hash ``admin_tokens``); a token of one is never valid for the other.
Admin tokens carry a role: ``admin`` (everything) or ``viewer`` (read-only); tokens made
before roles existed are admins.

When a token was last used is kept in ``{prefix}:{name}:used`` (digest -> time), written
by the same script that looks the token up, so it costs no round trip; it is as fresh as
TOKEN_CACHE_SECONDS (a process that trusts its cache does not ask Redis).

A token is 256 random bits, so its SHA-256 digest is a safe lookup key: finding it by
digest reveals nothing about other tokens, and the digest is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson
import redis

from bridge.errors import REDIS_UNAVAILABLE, Unavailable
from bridge.runtime import clock

TOKEN_CACHE_SECONDS = 5.0
"""How long a process trusts a verified token without asking Redis; bounds revocation delay."""

TOKEN_PREFIX = "scim_"
"""How a SCIM token starts, so a leaked one is recognisable (secret scanners, logs)."""

ADMIN_TOKEN_PREFIX = "adm_"
"""How an admin API token starts."""

ADMIN = "admin"
"""The role that may do everything the admin API and the console offer."""

VIEWER = "viewer"
"""The read-only role: it sees what an admin sees and changes nothing."""

ROLES = (ADMIN, VIEWER)

_IDENTIFY = """
local found = redis.call('HGET', KEYS[1], ARGV[1])
if found then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return found
"""
"""Look a digest up and, when it is a token, note when it was used: one round trip."""


@dataclass(frozen=True)
class TokenInfo:
    """A token's public side: id, name, creation time, role (admin tokens), last use."""

    id: str
    name: str
    created: str
    role: str | None = None
    last_used: str | None = None

    def stored(self) -> bytes:
        """What the store keeps of it (the last use is kept apart)."""
        fields = {"id": self.id, "name": self.name, "created": self.created}
        if self.role is not None:
            fields["role"] = self.role
        return orjson.dumps(fields)


def digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256, never the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Tokens in the Redis hash ``{prefix}:{name}`` (digest -> metadata)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "bridge",
        name: str = "tokens",
        *,
        token_prefix: str = TOKEN_PREFIX,
        default_role: str | None = None,
    ) -> None:
        """``default_role`` makes a store of tokens with roles (the admin tokens): a token
        stored without one has it."""
        self.redis = client
        self.key = f"{prefix}:{name}"
        self.used_key = f"{self.key}:used"
        self.token_prefix = token_prefix
        self.default_role = default_role
        self._cache: dict[str, tuple[float, TokenInfo]] = {}
        self._identify = client.register_script(_IDENTIFY)

    @property
    def has_roles(self) -> bool:
        """Whether this store's tokens carry a role."""
        return self.default_role is not None

    def create(self, name: str, role: str | None = None) -> tuple[TokenInfo, str]:
        """A new token; the secret is returned once and never stored. ValueError for a
        role this store does not have."""
        if role is not None and (not self.has_roles or role not in ROLES):
            raise ValueError(
                f"role must be one of {', '.join(ROLES)}"
                if self.has_roles
                else "these tokens have no role"
            )
        secret = self.token_prefix + secrets.token_urlsafe(32)
        info = TokenInfo(
            id=secrets.token_hex(4),
            name=name,
            created=clock.now(),
            role=role or self.default_role,
        )
        self.redis.hset(self.key, digest(secret), info.stored())
        return info, secret

    def list(self) -> list[TokenInfo]:
        """Every token's public side, with its last use, oldest first."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.key)
        pipe.hgetall(self.used_key)
        tokens, used = pipe.execute()
        return sorted(
            (self._info(raw, used.get(key)) for key, raw in tokens.items()),
            key=lambda t: t.created,
        )

    def _info(self, raw: bytes, used: bytes | None = None) -> TokenInfo:
        fields = orjson.loads(raw)
        fields.setdefault("role", self.default_role)
        return TokenInfo(**fields, last_used=used.decode() if used else None)

    def revoke(self, token_id: str) -> bool:
        """Revoke by id; takes effect everywhere within TOKEN_CACHE_SECONDS."""
        for key, value in self.redis.hgetall(self.key).items():
            if orjson.loads(value)["id"] == token_id:
                pipe = self.redis.pipeline(transaction=False)
                pipe.hdel(self.key, key)
                pipe.hdel(self.used_key, key)
                pipe.execute()
                self._cache.clear()
                return True
        return False

    def verify(self, secret: str) -> bool:
        """Whether ``secret`` is a current token."""
        return self.identify(secret) is not None

    def identify(self, secret: str) -> TokenInfo | None:
        """The current token ``secret`` is (its id and name, for the audit trail), or None."""
        return self.by_digest(digest(secret))

    def by_digest(self, wanted: str) -> TokenInfo | None:
        """The current token whose digest is ``wanted`` (a console session keeps only the
        digest of the token it signed in with), or None."""
        now = time.monotonic()
        for cached, (expiry, info) in list(self._cache.items()):
            if hmac.compare_digest(cached, wanted) and expiry > now:
                return info
        try:
            raw = self._identify(keys=[self.key, self.used_key], args=[wanted, clock.now()])
        except redis.RedisError as exc:
            raise Unavailable(REDIS_UNAVAILABLE) from exc
        if raw is None:
            return None
        info = self._info(raw)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[wanted] = (now + TOKEN_CACHE_SECONDS, info)
        return info

    def any(self) -> bool:
        """Whether any token exists."""
        return bool(self.redis.hlen(self.key))
