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


class ScopeMembers:
    """The members of each assigned group, as of the last run, kept up to date from the
    groups delta's ``members@delta``: an incremental run then knows who is in scope without
    listing every group again.

    Keys::

        {p}:graph:scope:{scope}:groups        set of group ids whose members are held
        {p}:graph:scope:{scope}:group:{id}    set of the group's user ids (Graph ids)
    """

    def __init__(self, client: redis.Redis, prefix: str, scope: str) -> None:
        self.redis = client
        self.base = f"{prefix}:graph:scope:{scope}"

    def _group(self, group_id: str) -> str:
        return f"{self.base}:group:{group_id}"

    def held(self) -> set[str]:
        return {g.decode() for g in self.redis.smembers(f"{self.base}:groups")}

    def reset(self) -> None:
        held = self.held()
        pipe = self.redis.pipeline(transaction=False)
        for group_id in held:
            pipe.delete(self._group(group_id))
        pipe.delete(f"{self.base}:groups")
        pipe.execute()

    def change(self, changes: dict[str, tuple[list[str], list[str]]]) -> None:
        """Apply ``{group id: (added user ids, removed user ids)}`` in one round trip."""
        if not changes:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(f"{self.base}:groups", *changes)
        for group_id, (added, removed) in changes.items():
            if added:
                pipe.sadd(self._group(group_id), *added)
            if removed:
                pipe.srem(self._group(group_id), *removed)
        pipe.execute()

    def drop(self, group_ids: Iterable[str]) -> None:
        group_ids = list(group_ids)
        if not group_ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(f"{self.base}:groups", *group_ids)
        pipe.delete(*(self._group(g) for g in group_ids))
        pipe.execute()

    def members(self, group_id: str) -> list[str]:
        return sorted(m.decode() for m in self.redis.smembers(self._group(group_id)))

    def users(self, group_ids: Iterable[str]) -> set[str]:
        keys = [self._group(g) for g in group_ids]
        if not keys:
            return set()
        return {m.decode() for m in self.redis.sunion(keys)}
