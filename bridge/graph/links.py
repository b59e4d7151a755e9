"""Which directory record stands for which Entra object, and where the last delta round
ended.

Keys::

    {p}:graph:link:{kind}      hash Graph object id -> bridge id
    {p}:graph:rlink:{kind}     hash bridge id -> Graph object id
    {p}:graph:delta:{scope}    hash "users"/"groups" -> Graph delta link of the last run

:class:`DryRunLinks` keeps what a dry run would write in memory, over the stored links.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis


def text(value: bytes | str) -> str:
    """A Redis reply as text (the clients here do not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value


class Links:
    """Links between Graph object ids and bridge ids, and the saved delta links."""

    def __init__(self, client: redis.Redis, prefix: str = "bridge") -> None:
        self.redis = client
        self.prefix = prefix

    def _key(self, kind: str, reverse: bool = False) -> str:
        return f"{self.prefix}:graph:{'rlink' if reverse else 'link'}:{kind}"

    def _delta_key(self, scope: str) -> str:
        return f"{self.prefix}:graph:delta:{scope}"

    def bridge_ids(self, kind: str, graph_ids: list[str]) -> dict[str, str]:
        """Graph id -> bridge id, for those linked."""
        if not graph_ids:
            return {}
        values = self.redis.hmget(self._key(kind), graph_ids)
        return {g: text(v) for g, v in zip(graph_ids, values, strict=True) if v is not None}

    def graph_ids(self, kind: str, bridge_ids: list[str]) -> dict[str, str]:
        """Bridge id -> Graph id, for those linked."""
        if not bridge_ids:
            return {}
        values = self.redis.hmget(self._key(kind, reverse=True), bridge_ids)
        return {b: text(v) for b, v in zip(bridge_ids, values, strict=True) if v is not None}

    def linked_graph_ids(self, kind: str) -> set[str]:
        """Every Graph id of ``kind`` that has a link."""
        return {text(g) for g in self.redis.hkeys(self._key(kind))}

    def count(self, kind: str) -> int:
        """How many Graph objects of ``kind`` are linked."""
        return int(self.redis.hlen(self._key(kind)))

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
        """The delta link the last run of ``scope`` ended ``kind``'s round with."""
        value = self.redis.hget(self._delta_key(scope), kind)
        return text(value) if value else None

    def save_delta_link(self, scope: str, kind: str, link: str | None) -> None:
        """Start the next round of ``kind`` from ``link``; None: from scratch."""
        if link:
            self.redis.hset(self._delta_key(scope), kind, link)
        else:
            self.redis.hdel(self._delta_key(scope), kind)


class DryRunLinks(Links):
    """The stored links as a real run would leave them, without writing: what this run
    would link and which delta links it would save are kept in memory and read back."""

    def __init__(self, stored: Links) -> None:
        super().__init__(stored.redis, stored.prefix)
        self._links: dict[str, dict[str, str]] = {}
        self._rlinks: dict[str, dict[str, str]] = {}
        self._delta: dict[tuple[str, str], str | None] = {}

    def bridge_ids(self, kind: str, graph_ids: list[str]) -> dict[str, str]:
        """Graph id -> bridge id, this run's links first."""
        mine = self._links.get(kind, {})
        found = super().bridge_ids(kind, [g for g in graph_ids if g not in mine])
        found.update({g: mine[g] for g in graph_ids if g in mine})
        return found

    def graph_ids(self, kind: str, bridge_ids: list[str]) -> dict[str, str]:
        """Bridge id -> Graph id, this run's links first."""
        mine = self._rlinks.get(kind, {})
        found = super().graph_ids(kind, [b for b in bridge_ids if b not in mine])
        found.update({b: mine[b] for b in bridge_ids if b in mine})
        return found

    def linked_graph_ids(self, kind: str) -> set[str]:
        """Stored and would-be links."""
        return super().linked_graph_ids(kind) | set(self._links.get(kind, {}))

    def count(self, kind: str) -> int:
        """Stored and would-be links."""
        return len(self.linked_graph_ids(kind))

    def link(self, kind: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Remember the pairs for this run only."""
        for graph_id, bridge_id in pairs:
            self._links.setdefault(kind, {})[graph_id] = bridge_id
            self._rlinks.setdefault(kind, {})[bridge_id] = graph_id

    def delta_link(self, scope: str, kind: str) -> str | None:
        """The link this run would have saved, else the stored one."""
        if (scope, kind) in self._delta:
            return self._delta[(scope, kind)]
        return super().delta_link(scope, kind)

    def save_delta_link(self, scope: str, kind: str, link: str | None) -> None:
        """Remember the link for this run only."""
        self._delta[(scope, kind)] = link
