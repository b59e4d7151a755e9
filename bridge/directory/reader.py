"""Reading the directory: key names, records by id, index lookups, scans, pipelined reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import redis

from bridge import errors
from bridge.directory.indexes import fold
from bridge.directory.stored import Kind, Record, as_text, parse_member, parse_record
from bridge.errors import REDIS_UNAVAILABLE, Unavailable

SCAN_BATCH = 500
"""Records fetched per round trip when a filter cannot use an index."""

LUA_DIR = Path(__file__).parent / "lua"
"""The directory's Lua scripts."""

T = TypeVar("T")


def changes_key(prefix: str) -> str:
    """The change stream every write appends to, in the same Lua script."""
    return f"{prefix}:changes"


class DirectoryReader:
    """The directory's keys and reads (see :mod:`bridge.directory.records` for the layout)."""

    def __init__(self, client: redis.Redis, prefix: str = "bridge") -> None:
        self.redis = client
        self.prefix = prefix
        self._find = client.register_script((LUA_DIR / "find.lua").read_text())

    # --- keys -----------------------------------------------------------------------------
    def key(self, kind: Kind, rid: str) -> str:
        """The key of one record."""
        return f"{self.prefix}:{kind}:{rid}"

    def index_key(self, kind: Kind, attr: str) -> str:
        """The key of a unique index."""
        return f"{self.prefix}:idx:{kind}:{attr}"

    def order_key(self, kind: Kind) -> str:
        """The key of the sorted set of a kind's ids, in creation order."""
        return f"{self.prefix}:{kind}s"

    @property
    def changes_key(self) -> str:
        """The key of the change stream."""
        return changes_key(self.prefix)

    # --- reads ----------------------------------------------------------------------------
    def get(self, kind: Kind, rid: str, *, members: bool = False, groups: bool = False) -> Record:
        """One resource, optionally with its members (groups) or groups (users).

        One script call (:meth:`find` by id) rather than a pipeline of GET and SMEMBERS or
        HGETALL: redis-py's pipeline costs the web tier more than the script costs Redis.
        """
        records = self.find(kind, "id", "id", rid, members=members, groups=groups)
        if not records:
            raise errors.NotFound(f"{kind.capitalize()} {rid} not found")
        return records[0]

    def get_many(
        self, kind: Kind, ids: list[str], *, members: bool = False, groups: bool = False
    ) -> list[Record]:
        """Records for ``ids`` in one round trip, skipping ids that no longer exist."""
        if not ids:
            return []
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.mget([self.key(kind, rid) for rid in ids])
            for rid in ids:
                if members:
                    pipe.hgetall(self.key(kind, rid) + ":members")
                if groups:
                    pipe.smembers(self.key(kind, rid) + ":groups")
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise Unavailable(REDIS_UNAVAILABLE) from exc
        extras = iter(replies[1:])
        out: list[Record] = []
        for rid, raw in zip(ids, replies[0], strict=True):
            member_map = next(extras) if members else None
            group_set = next(extras) if groups else None
            if raw is None:
                continue
            record = parse_record(kind, rid, raw)
            if member_map is not None:
                record.members = [
                    parse_member(as_text(k), as_text(v)) for k, v in member_map.items()
                ]
            if group_set is not None:
                record.groups = sorted(as_text(g) for g in group_set)
            out.append(record)
        return out

    def find(
        self,
        kind: Kind,
        how: str,
        attr: str,
        value: str,
        *,
        members: bool = False,
        groups: bool = False,
    ) -> list[Record]:
        """Records found by ``id``, a ``unique`` index or a ``multi`` index, in one round trip
        (``value`` as the client wrote it: the index's case rule applies here)."""
        args = [
            self.prefix,
            kind,
            how,
            attr,
            value if how == "id" else fold(attr, value),
            "1" if groups else "0",
            "1" if members else "0",
        ]
        reply: list[Any] = self._read(lambda: self._find(args=args))
        out: list[Record] = []
        i = 0
        while i < len(reply):
            record = parse_record(kind, as_text(reply[i]), reply[i + 1])
            i += 2
            if groups:
                record.groups = sorted(as_text(g) for g in reply[i])
                i += 1
            if members:
                flat = reply[i]
                record.members = [
                    parse_member(as_text(flat[j]), as_text(flat[j + 1]))
                    for j in range(0, len(flat), 2)
                ]
                i += 1
            out.append(record)
        return out

    def record_keys(self, kind: Kind, rid: str) -> tuple[str, str]:
        """The keys of one record and of its derived set (a user's groups, a set; a group's
        members, a hash), for a caller that reads both in a script of its own, in the same
        round trip as more; :meth:`record_from` makes the record of the two replies."""
        key = self.key(kind, rid)
        return key, key + (":groups" if kind == "user" else ":members")

    @staticmethod
    def record_from(kind: Kind, rid: str, raw: bytes | None, derived: list[Any]) -> Record | None:
        """The record from what a script read at :meth:`record_keys` (a hash's fields and
        values in turn, as HGETALL gives them to a script); None when it does not exist."""
        if raw is None:
            return None
        record = parse_record(kind, rid, raw)
        if kind == "user":
            record.groups = sorted(as_text(g) for g in derived)
        else:
            record.members = [
                parse_member(as_text(derived[j]), as_text(derived[j + 1]))
                for j in range(0, len(derived), 2)
            ]
        return record

    def lookup(self, kind: Kind, attr: str, values: list[str]) -> list[str | None]:
        """The id each value of unique attribute ``attr`` names (None where none), in one
        round trip."""
        if not values:
            return []
        index = self.index_key(kind, attr)
        pipe = self.redis.pipeline(transaction=False)
        for value in values:
            pipe.hget(index, fold(attr, value))
        replies: list[Any] = self._read(pipe.execute)
        return [as_text(rid) if rid else None for rid in replies]

    def count(self, kind: Kind) -> int:
        """How many resources of ``kind`` the directory holds."""
        return int(self._read(lambda: self.redis.zcard(self.order_key(kind))))

    def ids(self, kind: Kind, start: int = 0, stop: int = -1) -> list[str]:
        """Ids in creation order, ``start``..``stop`` inclusive (ZRANGE semantics)."""
        found: list[Any] = self._read(lambda: self.redis.zrange(self.order_key(kind), start, stop))
        return [as_text(i) for i in found]

    def scan(self, kind: Kind, *, members: bool = False, groups: bool = False) -> Iterator[Record]:
        """Every record in creation order, fetched in batches."""
        start = 0
        while True:
            batch = self.ids(kind, start, start + SCAN_BATCH - 1)
            if not batch:
                return
            yield from self.get_many(kind, batch, members=members, groups=groups)
            start += SCAN_BATCH

    def existing(self, ids: Iterable[str]) -> dict[str, Kind]:
        """For each id, ``"user"`` or ``"group"`` if such a resource exists."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for rid in ids:
            pipe.exists(self.key("user", rid))
            pipe.exists(self.key("group", rid))
        replies: list[Any] = self._read(pipe.execute)
        found: dict[str, Kind] = {}
        for i, rid in enumerate(ids):
            if replies[2 * i]:
                found[rid] = "user"
            elif replies[2 * i + 1]:
                found[rid] = "group"
        return found

    def _read(self, fn: Callable[[], T]) -> T:
        """Run a read; Redis being away is Unavailable (a 503 at the edges)."""
        try:
            return fn()
        except redis.RedisError as exc:
            raise Unavailable(REDIS_UNAVAILABLE) from exc
