"""Per-target delivery bookkeeping in Redis.

Keys (``{t}`` is ``{prefix}:target:{target id}``; an *item* is ``"{kind}:{id}"``)::

    {t}:state           hash item -> what the target was last brought to (JSON)
    {t}:log             list of recent deliveries, newest first (capped)
    {t}:dead            hash item -> dead letter: last error, attempts (replayable)
    {t}:held            hash item -> held delivery: reason "circuit" or "guard"
    {t}:breaker         hash: consecutive failures, state, opened/probe times
    {t}:deprovisions    sorted set of recent deprovisions (deletion guard window)
    {t}:stats           hash of counters
    {t}:lock:{item}     delivery lock: one delivery per target and resource at a time
    {t}:pending:{lane}  set of items changed since the lane's last job took them
                        (lane: ``changes`` or ``deprovision``)
    {t}:pending:{lane}:queued   the lane's taker: the job queued, or running, to take them
    {t}:pending:{lane}:origins  hash item -> id of the request that last changed it
    {t}:taken:{job}     set of the items a job took and has not finished yet

Changes are coalesced per lane: however often a resource changes while its target is
busy or down, it waits there once, and one job takes everything waiting when it starts,
then comes back for what arrived meanwhile (see bridge/delivery/pending.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from bridge.delivery.pending import PendingChanges, item
from bridge.directory.records import Directory
from bridge.directory.stored import Kind, Record, as_text
from bridge.runtime import clock

_LUA_DIR = Path(__file__).parent / "lua"

LOG_LENGTH = 1000
"""Recent deliveries kept per target."""

LOCK_SECONDS = 60
"""A delivery lock expires after this long, should its worker die while holding it. The
same job run again (its worker died) takes its own lock over at once."""


@dataclass(frozen=True)
class Snapshot:
    """What one pipelined read returns for an item: lock, last state, the current record
    with its derived set (a user's groups, a group's members), and the breaker."""

    locked: bool
    state: dict[str, Any]
    record: Record | None
    breaker_open: bool


@dataclass
class Closings:
    """Writes that close finished deliveries (state, log entry, counters, lock), held back
    to reach Redis in the round trip of the next item's snapshot.

    An item is finished when its target has answered; what closes it only has to reach
    Redis before anything else its batch does there, and the next item's snapshot is the
    next thing the batch does (or, for an item read ahead, its intent, or the read of its
    members' states, or its failure): a batch of N items then spends N - 1 round trips
    fewer.
    What is still held when the batch ends goes with :meth:`Deliveries.close_all`."""

    calls: list[tuple[Script, list[str], list[EncodableT]]] = field(default_factory=list)


@dataclass(slots=True)
class Read:
    """An item's snapshot read (see :meth:`Deliveries.snapshot`): a call of the snapshot
    script that can join another round trip (see :meth:`Deliveries.remember`)."""

    kind: Kind
    rid: str
    directory: Directory
    sha: str
    keys_and_args: tuple[EncodableT, ...]

    def add(self, pipe: Pipeline) -> None:
        """Add the read to a pipeline."""
        pipe.evalsha(self.sha, 5, *self.keys_and_args)  # 5 keys: see snapshot.lua

    def snapshot(self, reply: list[Any]) -> Snapshot:
        """The snapshot from the script's reply."""
        locked, state, raw, derived, breaker = reply
        return Snapshot(
            locked == 1,
            orjson.loads(state) if state else {},
            self.directory.record_from(self.kind, self.rid, raw, derived),
            breaker == b"open",
        )


def now_iso() -> str:
    """The time now, as the delivery log writes it (UTC, milliseconds)."""
    return clock.now("milliseconds")


class Deliveries(PendingChanges):
    """Delivery state, log, dead letters, held items and breaker for every target."""

    def __init__(self, client: redis.Redis, prefix: str = "bridge") -> None:
        self.redis = client
        self.prefix = prefix
        self._finish = client.register_script((_LUA_DIR / "finish.lua").read_text())
        self._take = client.register_script((_LUA_DIR / "take.lua").read_text())
        self._pend = client.register_script((_LUA_DIR / "pend.lua").read_text())
        self._hand_off = client.register_script((_LUA_DIR / "hand_off.lua").read_text())
        self._release = client.register_script((_LUA_DIR / "release.lua").read_text())
        self._snapshot = client.register_script((_LUA_DIR / "snapshot.lua").read_text())

    def key(self, target_id: str, name: str) -> str:
        """The key of one of a target's bookkeeping families."""
        return f"{self.prefix}:target:{target_id}:{name}"

    # --- the delivery itself --------------------------------------------------------------
    def snapshot(
        self,
        target_id: str,
        kind: Kind,
        rid: str,
        token: str,
        directory: Directory,
        closings: Closings | None = None,
    ) -> Snapshot:
        """Take the item's lock and read everything the delivery needs, in one round trip
        that first sends the ``closings`` of the items delivered before it.

        ``token`` names the job: a lock still held under it was left by this same job's
        earlier run, whose worker died, and is taken over."""
        read = self.read(target_id, kind, rid, token, directory)
        (reply,) = self._after(closings, read.add, self._snapshot)
        return read.snapshot(reply)

    def read(self, target_id: str, kind: Kind, rid: str, token: str, directory: Directory) -> Read:
        """The snapshot read of an item: its lock, state, record, derived set, breaker."""
        it = item(kind, rid)
        record, derived = directory.record_keys(kind, rid)
        keys_and_args = (
            self.key(target_id, f"lock:{it}"), self.key(target_id, "state"), record, derived,
            self.key(target_id, "breaker"),
            token, it, LOCK_SECONDS, kind,
        )  # fmt: skip
        return Read(kind, rid, directory, self._snapshot.sha, keys_and_args)

    def remember(
        self,
        target_id: str,
        kind: Kind,
        rid: str,
        state: dict[str, Any],
        closings: Closings | None = None,
        ahead: Read | None = None,
    ) -> Snapshot | None:
        """Save what the target may hold before a delivery tells it (see planning.intent),
        after the ``closings``; with ``ahead``, read the snapshot of the item after it (see
        :meth:`snapshot`) in the same round trip.

        Returns that snapshot, or None when ``ahead`` is None or its read failed (the item
        is then read again in its turn, and fails there if it still does)."""
        field_value = (self.key(target_id, "state"), item(kind, rid), orjson.dumps(state))
        if ahead is None and (closings is None or not closings.calls):
            self.redis.hset(*field_value)  # alone: a command costs the client less than a pipeline
            return None

        def write(pipe: Pipeline) -> None:
            pipe.hset(*field_value)
            if ahead is not None:
                ahead.add(pipe)

        script = self._snapshot if ahead is not None else None
        replies = self._after(closings, write, script, returned=1 if ahead else 0)
        if ahead is None or isinstance(replies[1], Exception):
            return None
        return ahead.snapshot(replies[1])

    def close_all(self, closings: Closings) -> None:
        """Send the ``closings`` still held, in one round trip: a lone one (a lone item's,
        or a batch's last) as a script call of its own, which costs the client less than a
        pipeline of one and, like :meth:`_after`, sends it again only after NOSCRIPT."""
        if len(closings.calls) == 1:
            script, keys, args = closings.calls.pop()
            script(keys=keys, args=args)
        elif closings.calls:
            self._after(closings, lambda pipe: None)

    def _after(
        self,
        closings: Closings | None,
        queue: Callable[[Pipeline], None],
        script: Script | None = None,
        *,
        returned: int = 0,
    ) -> list[Any]:
        """The held ``closings``, then what ``queue`` adds to a pipeline (which may run
        ``script``), in one round trip: the replies to ``queue``'s commands (its first error
        raised, but for the last ``returned`` replies, which are returned as they are).

        A closing is sent once: it leaves ``closings`` as it goes, whatever comes back, so a
        pipeline that fails after it ran never runs it again (its state would overwrite a
        later delivery's). A closing whose outcome is unknown (the connection failed) is
        lost as a worker killed after its delivery loses it: the item's intent and its
        lock's expiry cover that. Only a closing that Redis refused with NOSCRIPT (restarted,
        or emptied) did not run: its script is loaded and it goes again, with ``queue``'s
        commands, which are safe to run twice (a lock taken again by its holder, reads); so
        do they when Redis refused their ``script``, loaded then."""
        calls = closings.calls if closings is not None else []
        for last_try in (False, True):
            sent = list(calls)
            calls.clear()
            pipe = self.redis.pipeline(transaction=False)
            for closing, keys, args in sent:
                pipe.evalsha(closing.sha, len(keys), *keys, *args)
            queue(pipe)
            replies = pipe.execute(raise_on_error=False)
            refused = [
                c for c, r in zip(sent, replies, strict=False) if isinstance(r, NoScriptError)
            ]
            scripts = {closing for closing, _keys, _args in refused}
            if script is not None and any(
                isinstance(r, NoScriptError) for r in replies[len(sent) :]
            ):
                scripts.add(script)
            if scripts and not last_try:
                for lost in scripts:
                    self.redis.script_load(lost.script)  # its sha is its text's: unchanged
                calls.extend(refused)
                continue
            for reply in replies[: len(replies) - returned]:
                if isinstance(reply, Exception):
                    raise reply
            return replies[len(sent) :]
        raise AssertionError("the last try returns or raises")

    def status(self, target_id: str) -> dict[str, Any]:
        """Breaker state, parked counts and counters, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.key(target_id, "breaker"))
        pipe.hlen(self.key(target_id, "dead"))
        pipe.hlen(self.key(target_id, "held"))
        pipe.hgetall(self.key(target_id, "stats"))
        raw_breaker, dead, held, stats = pipe.execute()
        breaker = {k.decode(): v.decode() for k, v in raw_breaker.items()}
        return {
            "breaker": breaker.get("state", "closed"),
            "failures": int(breaker.get("failures", 0)),
            "opened_at": breaker.get("opened_at"),
            "dead": dead,
            "held": held,
            "stats": {k.decode(): int(v) for k, v in stats.items()},
        }

    def states(
        self, target_id: str, kind: Kind, ids: list[str], closings: Closings | None = None
    ) -> dict[str, dict[str, Any]]:
        """What the target was last brought to, for each of ``ids`` that has a state (read
        after the ``closings``, in their round trip)."""
        if not ids:
            return {}
        key, fields = self.key(target_id, "state"), [item(kind, i) for i in ids]
        if closings is not None and closings.calls:

            def read(pipe: Pipeline) -> None:
                pipe.hmget(key, fields)

            (raw,) = self._after(closings, read)
        else:
            raw = self.redis.hmget(key, fields)
        return {i: orjson.loads(r) for i, r in zip(ids, raw, strict=True) if r}

    def finish(
        self,
        target_id: str,
        kind: Kind,
        rid: str,
        token: str,
        *,
        state: dict[str, Any] | None,
        entry: dict[str, Any],
        counter: str,
        success: bool = False,
        closings: Closings | None = None,
    ) -> bool:
        """Save the new state (if any), log and count the delivery, release the lock; on
        success also clear its dead letter and the breaker. One round trip, or none when
        it is added to ``closings`` (then False). Returns True when this success closed an
        open breaker."""
        it = item(kind, rid)
        keys = [
            self.key(target_id, f"lock:{it}"),
            self.key(target_id, "state"),
            self.key(target_id, "log"),
            self.key(target_id, "stats"),
            self.key(target_id, "dead"),
            self.key(target_id, "breaker"),
        ]
        args: list[EncodableT] = [
            token,
            it,
            orjson.dumps(state) if state is not None else "",
            orjson.dumps(entry),
            counter,
            LOG_LENGTH,
            "1" if success else "0",
        ]
        if closings is not None:
            closings.calls.append((self._finish, keys, args))
            return False
        return bool(self._finish(keys=keys, args=args))

    def release(self, lock_key: str, token: str, closings: Closings | None = None) -> None:
        """Delete the lock only if it is still ours (with ``closings``, when they go)."""
        if closings is not None:
            closings.calls.append((self._release, [lock_key], [token]))
        else:
            self._release(keys=[lock_key], args=[token])

    def unlock(
        self, target_id: str, kind: Kind, rid: str, token: str, closings: Closings | None = None
    ) -> None:
        """Release an item's delivery lock (a delivery that found nothing to do)."""
        self.release(self.key(target_id, f"lock:{item(kind, rid)}"), token, closings)

    @staticmethod
    def new_token() -> str:
        """A fresh lock token."""
        return uuid.uuid4().hex

    # --- reading the log ------------------------------------------------------------------
    def log(self, target_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The target's recent deliveries, newest first."""
        return [
            orjson.loads(e) for e in self.redis.lrange(self.key(target_id, "log"), 0, limit - 1)
        ]

    def stats(self, target_id: str) -> dict[str, int]:
        """The target's delivery counters."""
        return {
            as_text(k): int(v) for k, v in self.redis.hgetall(self.key(target_id, "stats")).items()
        }

    # --- dead letters and held items ------------------------------------------------------
    def bury(self, target_id: str, kind: Kind, rid: str, error: str, attempts: int) -> None:
        """Dead-letter an item after its last failed attempt (replayable)."""
        entry = {
            "kind": kind,
            "id": rid,
            "reason": "failed",
            "error": error,
            "attempts": attempts,
            "at": now_iso(),
        }
        self.redis.hset(self.key(target_id, "dead"), item(kind, rid), orjson.dumps(entry))

    def hold(
        self, target_id: str, kind: Kind, rid: str, reason: str, error: str | None = None
    ) -> None:
        """Park an item for an admin (``guard``) or for the target to recover (``circuit``)."""
        entry = {
            "kind": kind,
            "id": rid,
            "reason": reason,
            "error": error,
            "attempts": 0,
            "at": now_iso(),
        }
        self.redis.hset(self.key(target_id, "held"), item(kind, rid), orjson.dumps(entry))

    def hold_all(
        self, target_id: str, items: Sequence[tuple[Kind, str]], reason: str, why: str
    ) -> None:
        """Hold ``items`` without examining them (the target is quarantined), logged and
        counted as held: one round trip for a whole batch."""
        at = now_iso()
        parked: dict[EncodableT, EncodableT] = {
            item(k, r): orjson.dumps(
                {"kind": k, "id": r, "reason": reason, "error": None, "attempts": 0, "at": at}
            )
            for k, r in items
        }
        logged = [
            orjson.dumps(
                {
                    "at": at,
                    "kind": k,
                    "id": r,
                    "action": None,
                    "outcome": "held",
                    "status": None,
                    "attempts": 0,
                    "latency_ms": 0.0,
                    "error": why,
                }
            )  # fmt: skip
            for k, r in items
        ]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key(target_id, "held"), mapping=parked)
        pipe.lpush(self.key(target_id, "log"), *logged)
        pipe.ltrim(self.key(target_id, "log"), 0, LOG_LENGTH - 1)
        pipe.hincrby(self.key(target_id, "stats"), "held", len(items))
        pipe.execute()

    def parked(self, target_id: str, which: str) -> list[dict[str, Any]]:
        """Dead letters (``dead``) or held deliveries (``held``), oldest first."""
        entries = [orjson.loads(v) for v in self.redis.hvals(self.key(target_id, which))]
        return sorted(entries, key=lambda e: e["at"])

    def take(self, target_id: str, which: str, items: Iterable[str] | None = None) -> list[str]:
        """Remove and return parked items (all when ``items`` is None)."""
        key = self.key(target_id, which)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hkeys(key)
            chosen = None if items is None else list(items)
            keys = [k.decode() for k in pipe.execute()[0]]
        picked = keys if chosen is None else [k for k in keys if k in set(chosen)]
        if picked:
            self.redis.hdel(key, *picked)
        return picked

    # --- deletion guard -------------------------------------------------------------------
    def deprovisions_within(self, target_id: str, window_seconds: int) -> int:
        """Deprovisions counted in the last ``window_seconds`` (the deletion guard's measure)."""
        key = self.key(target_id, "deprovisions")
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zremrangebyscore(key, 0, now - window_seconds)
        pipe.zcard(key)
        return int(pipe.execute()[1])

    def count_deprovision(self, target_id: str, kind: Kind, rid: str) -> None:
        """Count one deprovision for the deletion guard."""
        self.redis.zadd(
            self.key(target_id, "deprovisions"), {f"{item(kind, rid)}:{time.time()}": time.time()}
        )

    # --- circuit breaker ------------------------------------------------------------------
    def breaker(self, target_id: str) -> dict[str, Any]:
        """The target's circuit breaker: state, failures, opened time."""
        raw = self.redis.hgetall(self.key(target_id, "breaker"))
        return {as_text(k): as_text(v) for k, v in raw.items()}

    def record_failure(self, target_id: str, threshold: int) -> bool:
        """Count a failure; True when this one opened the breaker."""
        key = self.key(target_id, "breaker")
        failures = self.redis.hincrby(key, "failures", 1)
        if failures >= threshold and self.redis.hget(key, "state") != b"open":
            self.redis.hset(key, mapping={"state": "open", "opened_at": now_iso()})
            return True
        return False

    def quarantined(self, target_ids: list[str]) -> set[str]:
        """Which of the targets have an open breaker, in one round trip."""
        ids = list(dict.fromkeys(target_ids))
        pipe = self.redis.pipeline(transaction=False)
        for target_id in ids:
            pipe.hget(self.key(target_id, "breaker"), "state")
        return {t for t, state in zip(ids, pipe.execute(), strict=True) if state == b"open"}

    def is_open(self, target_id: str) -> bool:
        """Whether the target is quarantined (breaker open)."""
        return self.redis.hget(self.key(target_id, "breaker"), "state") == b"open"

    def close(self, target_id: str) -> None:
        """Close the breaker: the target answers again."""
        self.redis.hset(self.key(target_id, "breaker"), mapping={"failures": 0, "state": "closed"})
        self.redis.hdel(self.key(target_id, "breaker"), "opened_at")

    def forget(self, target_id: str) -> None:
        """Drop all bookkeeping of a deleted target."""
        names = (
            "state", "log", "dead", "held", "breaker", "deprovisions", "stats",
            "pending:changes", "pending:deprovision",
            "pending:changes:queued", "pending:deprovision:queued",
            "pending:changes:origins", "pending:deprovision:origins",
        )  # fmt: skip
        self.redis.delete(*(self.key(target_id, n) for n in names))
