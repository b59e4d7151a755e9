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

Every write is one Lua script (``bridge/directory/lua``): checks first, then the record, its indexes
and the stream entry that announces it, so a change is never stored without being
announced, nor announced without being stored. The reads are
:class:`bridge.directory.reader.DirectoryReader`'s; the stored form and its parsing,
:mod:`bridge.directory.stored`'s; ids, :mod:`bridge.directory.ids`'.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from redis.commands.core import Script

from bridge import errors
from bridge.directory.ids import new_id
from bridge.directory.indexes import IndexValues
from bridge.directory.reader import LUA_DIR, DirectoryReader
from bridge.directory.stored import Kind, as_text
from bridge.errors import REDIS_UNAVAILABLE, Unavailable
from bridge.observability import metrics, request_context

STREAM_MAXLEN = 1_000_000
"""Approximate length the change stream is trimmed to; consumers trim what they processed."""


@dataclass
class MemberUpdate:
    """Membership changes for one group write."""

    add: dict[str, dict[str, Any]] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    replace: bool = False

    def to_lua(self) -> dict[str, Any]:
        """The update as the write script reads it (member extras as JSON text)."""
        return {
            "add": {mid: (orjson.dumps(x).decode() if x else "") for mid, x in self.add.items()},
            "remove": self.remove,
            "replace": self.replace,
        }


@dataclass(frozen=True)
class WriteResult:
    """What a write left: the new version, the timestamps, and whether anything changed."""

    version: int
    created: str
    last_modified: str
    changed: bool


class Directory(DirectoryReader):
    """Redis-backed store of SCIM users and groups: the reads, and the writes in Lua."""

    def __init__(self, client: redis.Redis, prefix: str = "bridge") -> None:
        super().__init__(client, prefix)
        self._write = client.register_script((LUA_DIR / "write.lua").read_text())
        self._delete = client.register_script((LUA_DIR / "delete.lua").read_text())

    # --- writes ---------------------------------------------------------------------------
    def create(
        self,
        kind: Kind,
        doc: dict[str, Any],
        index: IndexValues,
        now: str,
        members: MemberUpdate | None = None,
    ) -> tuple[str, WriteResult]:
        """Store a new resource under a server-assigned id (RFC 7644 §3.3)."""
        rid = new_id()
        return rid, self._run_write(kind, rid, "create", None, now, doc, index, members)

    def update(
        self,
        kind: Kind,
        rid: str,
        *,
        expect: int | None,
        now: str,
        doc: dict[str, Any] | None = None,
        index: IndexValues | None = None,
        members: MemberUpdate | None = None,
    ) -> WriteResult:
        """Replace the document and/or change memberships, if ``expect`` is still current."""
        return self._run_write(kind, rid, "update", expect, now, doc, index, members)

    def delete(self, kind: Kind, rid: str, *, expect: int | None, now: str) -> int:
        """Delete a resource, release its memberships, announce it. Returns the final version."""
        args = [
            self.prefix,
            kind,
            rid,
            "" if expect is None else str(expect),
            now,
            STREAM_MAXLEN,
            request_context.current() or "",
        ]
        reply = self._timed(kind, "delete", self._delete, args)
        _raise_for(reply)
        return int(reply[1])

    def _run_write(
        self,
        kind: Kind,
        rid: str,
        mode: str,
        expect: int | None,
        now: str,
        doc: dict[str, Any] | None,
        index: IndexValues | None,
        members: MemberUpdate | None,
    ) -> WriteResult:
        request: dict[str, Any] = {
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
            "request_id": request_context.current() or False,
        }
        reply = self._timed(kind, mode, self._write, [orjson.dumps(request).decode()])
        _raise_for(reply)
        _, version, created, modified, changed = reply
        return WriteResult(int(version), as_text(created), as_text(modified), bool(changed))

    def _timed(self, kind: Kind, op: str, script: Script, args: list[Any]) -> list[Any]:
        """Run a write script, counting it and its round trip by result."""
        started = time.perf_counter()
        result = "error"
        try:
            reply = self._call(script, args)
            result = (
                as_text(reply[1])
                if as_text(reply[0]) == "err"
                else ("ok" if reply[-1] else "unchanged")
            )
            if op == "delete" and as_text(reply[0]) == "ok":
                result = "ok"
            return reply
        finally:
            metrics.observe_write(kind, op, result, time.perf_counter() - started)

    def _call(self, script: Script, args: list[Any]) -> list[Any]:
        try:
            reply: list[Any] = script(args=args)
            return reply
        except redis.ResponseError as exc:
            raise errors.BridgeError("the directory rejected the write") from exc
        except redis.RedisError as exc:
            raise Unavailable(REDIS_UNAVAILABLE) from exc


def _may_deprovision(doc: dict[str, Any] | None, members: MemberUpdate | None) -> bool:
    """Whether a write may take access away: such changes are relayed first."""
    if doc is not None and doc.get("active") is False:
        return True
    return bool(members and (members.remove or members.replace))


def _raise_for(reply: list[Any]) -> None:
    if as_text(reply[0]) == "ok":
        return
    code, detail = as_text(reply[1]), as_text(reply[2])
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
