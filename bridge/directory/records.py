"""The normalized directory in Redis: users, groups, memberships, indexes, change stream.

Key templates (``{p}`` is the configured prefix, ``bridge`` by default)::

    {p}:user:{id}                 "<header json>\\n<document json>"  (header: v, c, m, ix)
    {p}:group:{id}                same layout
    {p}:users, {p}:groups         sorted sets of ids (score 0: lexical order = creation order)
    {p}:idx:user:userName         hash casefolded userName -> id      (unique)
    {p}:idx:user:externalId       hash externalId -> id               (unique)
    {p}:idx:user:email:{value}    set of ids with that casefolded email (not unique)
    {p}:idx:group:displayName     hash casefolded displayName -> id   (unique)
    {p}:idx:group:externalId      hash externalId -> id               (unique)
    {p}:group:{id}:members        hash member id -> "<user|group>|<extras json>"
    {p}:user:{id}:groups          set of group ids the user belongs to (derived ``groups``)
    {p}:changes                   stream announcing every change (kind, id, op, v, added,
                                  removed, deprovision, req: the writing request's id)

Every write is one Lua script (``bridge/lua``): checks first, then the record, its indexes
and the stream entry that announces it, so a change is never stored without being
announced, nor announced without being stored.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import redis

from bridge import errors
from bridge.directory.indexes import IndexValues, fold
from bridge.errors import REDIS_UNAVAILABLE, Unavailable
from bridge.observability import context, metrics

STREAM_MAXLEN = 1_000_000
"""Approximate length the change stream is trimmed to; consumers trim what they processed."""

SCAN_BATCH = 500
"""Records fetched per round trip when a filter cannot use an index."""

Kind = Literal["user", "group"]
"""The two kinds of resource the directory holds."""

KINDS: tuple[Kind, ...] = ("user", "group")

KIND_OF = {"User": "user", "Group": "group"}
"""The directory's kind of each SCIM resource type."""

_LUA_DIR = Path(__file__).parent / "lua"


_id_lock = threading.Lock()
_id_last = [0, 0]  # last millisecond, counter within it


def new_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so id order is creation order.

    Within one millisecond a 12-bit counter (RFC 9562 §6.2, method 1) keeps the ids of
    one process increasing; ids from different processes interleave by time.
    """
    rand = int.from_bytes(os.urandom(9), "big")
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _id_last[0]:
            ms = _id_last[0]
            _id_last[1] += 1
            if _id_last[1] > 0xFFF:
                ms += 1
                _id_last[1] = 0
        else:
            _id_last[1] = rand >> 64  # a random start below 256 leaves room to count up
        _id_last[0] = ms
        counter = _id_last[1]
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
"""What :func:`new_id` makes: a lower-case UUIDv7 in its canonical 8-4-4-4-12 form."""


def is_id(text: object) -> bool:
    """Whether ``text`` has the shape of an id :func:`new_id` makes.

    Anything else names no resource of ours, so it is answered without a Redis call; it
    could otherwise name another key family (``<id>:groups``, ``<id>:members``).
    """
    return isinstance(text, str) and _ID_SHAPE.fullmatch(text) is not None


@dataclass
class Record:
    """One stored resource: its document plus server-managed metadata."""

    kind: str
    id: str
    version: int
    created: str
    last_modified: str
    doc: dict
    members: list[dict] | None = None
    groups: list[str] | None = None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def as_resource(self) -> dict:
        """What filters and mappings see: the document plus id, meta and derived attributes."""
        resource = dict(self.doc)
        resource["id"] = self.id
        resource["meta"] = {"created": self.created, "lastModified": self.last_modified}
        if self.members is not None:
            resource["members"] = self.members
        if self.groups is not None:
            resource["groups"] = [{"value": g} for g in self.groups]
        return resource


@dataclass
class MemberUpdate:
    """Membership changes for one group write."""

    add: dict[str, dict] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    replace: bool = False

    def to_lua(self) -> dict:
        return {
            "add": {mid: (orjson.dumps(x).decode() if x else "") for mid, x in self.add.items()},
            "remove": self.remove,
            "replace": self.replace,
        }


@dataclass(frozen=True)
class WriteResult:
    version: int
    created: str
    last_modified: str
    changed: bool


def parse_record(kind: str, rid: str, raw: bytes) -> Record:
    header, _, body = raw.partition(b"\n")
    h = orjson.loads(header)
    return Record(kind, rid, h["v"], h["c"], h["m"], orjson.loads(body))


def parse_member(mid: str, stored: str) -> dict:
    """A stored member entry back into a SCIM ``members`` value."""
    mkind, _, extras = stored.partition("|")
    member = orjson.loads(extras) if extras else {}
    member["value"] = mid
    member["type"] = "User" if mkind == "user" else "Group"
    return member


def changes_key(prefix: str) -> str:
    """The change stream every write appends to, in the same Lua script."""
    return f"{prefix}:changes"


class Directory:
    """Redis-backed store of SCIM users and groups."""

    def __init__(self, client: redis.Redis, prefix: str = "bridge") -> None:
        self.redis = client
        self.prefix = prefix
        self._write = client.register_script((_LUA_DIR / "write.lua").read_text())
        self._delete = client.register_script((_LUA_DIR / "delete.lua").read_text())
        self._find = client.register_script((_LUA_DIR / "find.lua").read_text())

    # --- keys -----------------------------------------------------------------------------
    def key(self, kind: str, rid: str) -> str:
        return f"{self.prefix}:{kind}:{rid}"

    def index_key(self, kind: str, attr: str) -> str:
        return f"{self.prefix}:idx:{kind}:{attr}"

    def order_key(self, kind: str) -> str:
        return f"{self.prefix}:{kind}s"

    @property
    def changes_key(self) -> str:
        return changes_key(self.prefix)

    # --- writes ---------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        doc: dict,
        index: IndexValues,
        now: str,
        members: MemberUpdate | None = None,
    ) -> tuple[str, WriteResult]:
        """Store a new resource under a server-assigned id (RFC 7644 §3.3)."""
        rid = new_id()
        return rid, self._run_write(kind, rid, "create", None, now, doc, index, members)

    def update(
        self,
        kind: str,
        rid: str,
        *,
        expect: int | None,
        now: str,
        doc: dict | None = None,
        index: IndexValues | None = None,
        members: MemberUpdate | None = None,
    ) -> WriteResult:
        """Replace the document and/or change memberships, if ``expect`` is still current."""
        return self._run_write(kind, rid, "update", expect, now, doc, index, members)

    def delete(self, kind: str, rid: str, *, expect: int | None, now: str) -> int:
        """Delete a resource, release its memberships, announce it. Returns the final version."""
        args = [
            self.prefix,
            kind,
            rid,
            "" if expect is None else str(expect),
            now,
            STREAM_MAXLEN,
            context.current() or "",
        ]
        reply = self._timed(kind, "delete", self._delete, args)
        _raise_for(reply)
        return int(reply[1])

    def _run_write(
        self,
        kind: str,
        rid: str,
        mode: str,
        expect: int | None,
        now: str,
        doc: dict | None,
        index: IndexValues | None,
        members: MemberUpdate | None,
    ) -> WriteResult:
        request = {
            "prefix": self.prefix,
            "kind": kind,
            "id": rid,
            "mode": mode,
            "expect": False if expect is None else expect,
            "now": now,
            "doc": False if doc is None else orjson.dumps(doc).decode(),
            "unique": {k: (v if v is not None else False) for k, v in index.unique.items()}
            if index
            else {},
            "multi": index.multi if index else {},
            "members": members.to_lua() if members else False,
            "stream_maxlen": STREAM_MAXLEN,
            "deprovision": _may_deprovision(doc, members),
            "request_id": context.current() or False,
        }
        reply = self._timed(kind, mode, self._write, [orjson.dumps(request).decode()])
        _raise_for(reply)
        _, version, created, modified, changed = reply
        return WriteResult(int(version), _s(created), _s(modified), bool(changed))

    def _timed(self, kind: str, op: str, script, args: list) -> list:
        """Run a write script, counting it and its round trip by result."""
        started = time.perf_counter()
        result = "error"
        try:
            reply = self._call(script, args)
            result = _s(reply[1]) if _s(reply[0]) == "err" else ("ok" if reply[-1] else "unchanged")
            if op == "delete" and _s(reply[0]) == "ok":
                result = "ok"
            return reply
        finally:
            metrics.observe_write(kind, op, result, time.perf_counter() - started)

    def _call(self, script, args: list) -> list:
        try:
            return script(args=args)
        except redis.ResponseError as exc:
            raise errors.BridgeError("the directory rejected the write") from exc
        except redis.RedisError as exc:
            raise Unavailable(REDIS_UNAVAILABLE) from exc

    # --- reads ----------------------------------------------------------------------------
    def get(self, kind: str, rid: str, *, members: bool = False, groups: bool = False) -> Record:
        """One resource, optionally with its members (groups) or groups (users)."""
        records = self.get_many(kind, [rid], members=members, groups=groups)
        if not records:
            raise errors.NotFound(f"{kind.capitalize()} {rid} not found")
        return records[0]

    def get_many(
        self, kind: str, ids: list[str], *, members: bool = False, groups: bool = False
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
                record.members = [parse_member(_s(k), _s(v)) for k, v in member_map.items()]
            if group_set is not None:
                record.groups = sorted(_s(g) for g in group_set)
            out.append(record)
        return out

    def find(
        self,
        kind: str,
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
        reply = self._read(lambda: self._find(args=args))
        out: list[Record] = []
        i = 0
        while i < len(reply):
            record = parse_record(kind, _s(reply[i]), reply[i + 1])
            i += 2
            if groups:
                record.groups = sorted(_s(g) for g in reply[i])
                i += 1
            if members:
                flat = reply[i]
                record.members = [
                    parse_member(_s(flat[j]), _s(flat[j + 1])) for j in range(0, len(flat), 2)
                ]
                i += 1
            out.append(record)
        return out

    def read_in(self, pipe: redis.client.Pipeline, kind: str, rid: str) -> None:
        """Queue on ``pipe`` the reads of one record with its derived set (a user's groups,
        a group's members), for a caller that reads more in the same round trip; the two
        replies, in order, make the record with :meth:`record_from`."""
        key = self.key(kind, rid)
        pipe.get(key)
        if kind == "user":
            pipe.smembers(key + ":groups")
        else:
            pipe.hgetall(key + ":members")

    @staticmethod
    def record_from(kind: str, rid: str, raw: bytes | None, derived: Any) -> Record | None:
        """The record from the replies of :meth:`read_in`; None when it does not exist."""
        if raw is None:
            return None
        record = parse_record(kind, rid, raw)
        if kind == "user":
            record.groups = sorted(_s(g) for g in derived)
        else:
            record.members = [parse_member(_s(k), _s(v)) for k, v in derived.items()]
        return record

    def lookup(self, kind: str, attr: str, values: list[str]) -> list[str | None]:
        """The id each value of unique attribute ``attr`` names (None where none), in one
        round trip."""
        if not values:
            return []
        index = self.index_key(kind, attr)
        pipe = self.redis.pipeline(transaction=False)
        for value in values:
            pipe.hget(index, fold(attr, value))
        return [_s(rid) if rid else None for rid in self._read(pipe.execute)]

    def count(self, kind: str) -> int:
        return int(self._read(lambda: self.redis.zcard(self.order_key(kind))))

    def ids(self, kind: str, start: int = 0, stop: int = -1) -> list[str]:
        """Ids in creation order, ``start``..``stop`` inclusive (ZRANGE semantics)."""
        return [
            _s(i) for i in self._read(lambda: self.redis.zrange(self.order_key(kind), start, stop))
        ]

    def scan(self, kind: str, *, members: bool = False, groups: bool = False) -> Iterator[Record]:
        """Every record in creation order, fetched in batches."""
        start = 0
        while True:
            batch = self.ids(kind, start, start + SCAN_BATCH - 1)
            if not batch:
                return
            yield from self.get_many(kind, batch, members=members, groups=groups)
            start += SCAN_BATCH

    def existing(self, ids: Iterable[str]) -> dict[str, str]:
        """For each id, ``"user"`` or ``"group"`` if such a resource exists."""
        ids = list(ids)
        pipe = self.redis.pipeline(transaction=False)
        for rid in ids:
            pipe.exists(self.key("user", rid))
            pipe.exists(self.key("group", rid))
        replies = self._read(pipe.execute)
        found = {}
        for i, rid in enumerate(ids):
            if replies[2 * i]:
                found[rid] = "user"
            elif replies[2 * i + 1]:
                found[rid] = "group"
        return found

    def _read(self, fn):
        try:
            return fn()
        except redis.RedisError as exc:
            raise Unavailable(REDIS_UNAVAILABLE) from exc


def _may_deprovision(doc: dict | None, members: MemberUpdate | None) -> bool:
    """Whether a write may take access away: such changes are relayed first."""
    if doc is not None and doc.get("active") is False:
        return True
    return bool(members and (members.remove or members.replace))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raise_for(reply: list) -> None:
    if _s(reply[0]) == "ok":
        return
    code, detail = _s(reply[1]), _s(reply[2])
    if code == "notfound":
        raise errors.NotFound(f"resource {detail} not found")
    if code == "precondition":
        raise VersionMismatch(int(detail))
    if code == "uniqueness":
        raise errors.Conflict(f"{detail} is already in use")
    if code == "members":
        raise errors.Invalid(f"members do not exist: {detail}")
    if code == "conflict":
        raise errors.Conflict(detail)
    raise errors.BridgeError(f"unexpected directory reply {code}")


class VersionMismatch(errors.PreconditionFailed):
    """The stored version is not the one the write was based on."""

    def __init__(self, current: int) -> None:
        super().__init__(f'resource changed: current version is W/"{current}"')
        self.current = current
