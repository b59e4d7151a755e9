"""Bearer tokens: several at once (rotation), stored only as SHA-256 digests.

Two stores use this: the SCIM tokens Entra authenticates with (hash ``tokens``) and the
admin API's tokens (hash ``admin_tokens``); a token of one is never valid for the other.

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


@dataclass(frozen=True)
class TokenInfo:
    """A token's public side: id, name, creation time."""

    id: str
    name: str
    created: str


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
    ) -> None:
        self.redis = client
        self.key = f"{prefix}:{name}"
        self.token_prefix = token_prefix
        self._cache: dict[str, tuple[float, TokenInfo]] = {}

    def create(self, name: str) -> tuple[TokenInfo, str]:
        """A new token; the secret is returned once and never stored."""
        secret = self.token_prefix + secrets.token_urlsafe(32)
        info = TokenInfo(
            id=secrets.token_hex(4),
            name=name,
            created=clock.now(),
        )
        self.redis.hset(self.key, digest(secret), orjson.dumps(info.__dict__))
        return info, secret

    def list(self) -> list[TokenInfo]:
        """Every token's public side."""
        return sorted(
            (TokenInfo(**orjson.loads(v)) for v in self.redis.hvals(self.key)),
            key=lambda t: t.created,
        )

    def revoke(self, token_id: str) -> bool:
        """Revoke by id; takes effect everywhere within TOKEN_CACHE_SECONDS."""
        for key, value in self.redis.hgetall(self.key).items():
            if orjson.loads(value)["id"] == token_id:
                self.redis.hdel(self.key, key)
                self._cache.clear()
                return True
        return False

    def verify(self, secret: str) -> bool:
        """Whether ``secret`` is a current token."""
        return self.identify(secret) is not None

    def identify(self, secret: str) -> TokenInfo | None:
        """The current token ``secret`` is (its id and name, for the audit trail), or None."""
        wanted = digest(secret)
        now = time.monotonic()
        for cached, (expiry, info) in list(self._cache.items()):
            if hmac.compare_digest(cached, wanted) and expiry > now:
                return info
        try:
            raw = self.redis.hget(self.key, wanted)
        except redis.RedisError as exc:
            raise Unavailable(REDIS_UNAVAILABLE) from exc
        if raw is None:
            return None
        info = TokenInfo(**orjson.loads(raw))
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[wanted] = (now + TOKEN_CACHE_SECONDS, info)
        return info

    def any(self) -> bool:
        """Whether any token exists."""
        return bool(self.redis.hlen(self.key))
