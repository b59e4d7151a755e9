"""Which directory record stands for which Entra object.

Keys::

    {p}:graph:link:{kind}      hash Graph object id -> bridge id
    {p}:graph:rlink:{kind}     hash bridge id -> Graph object id
    {p}:graph:delta:{scope}    hash "users"/"groups" -> Graph delta link of the last run
"""

from __future__ import annotations

from collections.abc import Iterable

import redis


class Links:
    def __init__(self, client: redis.Redis, prefix: str = "bridge") -> None:
        self.redis = client
        self.prefix = prefix

    def _key(self, kind: str, reverse: bool = False) -> str:
        return f"{self.prefix}:graph:{'rlink' if reverse else 'link'}:{kind}"

    def bridge_ids(self, kind: str, graph_ids: list[str]) -> dict[str, str]:
        """Graph id -> bridge id, for those linked."""
        if not graph_ids:
            return {}
        values = self.redis.hmget(self._key(kind), graph_ids)
        return {g: v.decode() for g, v in zip(graph_ids, values, strict=True) if v is not None}

    def graph_ids(self, kind: str, bridge_ids: list[str]) -> dict[str, str]:
        """Bridge id -> Graph id, for those linked."""
        if not bridge_ids:
            return {}
        values = self.redis.hmget(self._key(kind, reverse=True), bridge_ids)
        return {b: v.decode() for b, v in zip(bridge_ids, values, strict=True) if v is not None}

    def link(self, kind: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (Graph id, bridge id) pairs."""
        pairs = list(pairs)
        if not pairs:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self._key(kind), mapping=dict(pairs))
        pipe.hset(self._key(kind, reverse=True), mapping={b: g for g, b in pairs})
        pipe.execute()

    def delta_link(self, scope: str, kind: str) -> str | None:
        value = self.redis.hget(f"{self.prefix}:graph:delta:{scope}", kind)
        return value.decode() if value else None

    def save_delta_link(self, scope: str, kind: str, link: str | None) -> None:
        key = f"{self.prefix}:graph:delta:{scope}"
        if link:
            self.redis.hset(key, kind, link)
        else:
            self.redis.hdel(key, kind)
