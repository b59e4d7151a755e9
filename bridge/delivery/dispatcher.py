"""Turn the directory's change stream into delivery jobs, one per target.

The directory appends every change to the stream ``{p}:changes`` in the same Lua script
that stores it. The dispatcher reads it through a consumer group, works out which targets
a change concerns, enqueues the RQ delivery jobs (each in its target's lane, see
:mod:`bridge.delivery.jobs`), and only then acknowledges and deletes the entries: a change is
handed over at least once. Entries left pending by a dispatcher that died are claimed by
another after CLAIM_IDLE_MS, and handed over again; deliveries converge on the current
state, so that costs a no-op.

Any number of dispatchers may run (each worker process runs one); the consumer group
hands each entry to one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis

from bridge.delivery.deliveries import Deliveries
from bridge.delivery.jobs import Jobs
from bridge.directory.stored import Kind, as_kind
from bridge.targets.model import Target

log = logging.getLogger(__name__)

GROUP = "dispatch"
BATCH = 500
"""Stream entries read per round trip."""

CLAIM_IDLE_MS = 15_000
"""Pending entries idle this long are taken over from a dispatcher that died (a live one
acknowledges within milliseconds)."""

Entry = tuple[bytes, dict[bytes, bytes]]
"""A change stream entry as Redis returns it: its id and its fields."""

RECLAIM_SECONDS = 5.0
"""How often a dispatcher looks for entries a dead one left pending."""

GATHER_SECONDS = 0.002
"""Pause after a read that found changes, before the next, per change it found (see
:func:`gather_after`): under a stream of writes each read then takes several entries,
and its round trips (read, targets, acknowledgement) are shared by them. (At 1,300
writes/s and one entry per read, the dispatcher alone cost about 0.35 cores.)"""

GATHER_MAX_SECONDS = 0.010
"""The longest pause between two reads: at most this long does a change (a deprovision
too) wait to be read that it would not have waited without the pause."""

RETRY_SECONDS = 1.0
"""Wait after a Redis error before the dispatcher tries again."""


def gather_after(handed: int) -> float:
    """How long to let changes gather after a read that handed ``handed`` over.

    A read that found several changes tells of a busy stream, and a longer pause lets the
    next read take more: what a read costs is mostly its round trips, so a change costs
    the dispatcher about 390 µs read alone, 140 µs three at a time, 36 µs ten at a time.
    Below about 500 changes a second reads find one change each and wait GATHER_SECONDS,
    as a single change would; above, the pause doubles from read to read up to
    GATHER_MAX_SECONDS (about 5 ms more for a change, on average)."""
    return min(GATHER_MAX_SECONDS, GATHER_SECONDS * handed)


def beats_key(prefix: str) -> str:
    """The sorted set of dispatchers by the time of their last beat (see BEAT_SECONDS)."""
    return f"{prefix}:dispatchers"


BEAT_SECONDS = 1.0
"""How often a running dispatcher says it is alive (``{prefix}:dispatchers``, a sorted
set of consumer names by the time of their last beat). Redis's own idle time of a
consumer does not tell: a read that finds nothing does not refresh it."""


class Dispatcher:
    """Reads the change stream and enqueues delivery jobs."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        targets: Callable[[], list[Target]],
        consumer: str,
        jobs: Jobs,
        deliveries: Deliveries,
    ) -> None:
        self.redis = client
        self.stream = stream
        self.beats = beats_key(jobs.prefix)
        self.targets = targets
        self.consumer = consumer
        self.jobs = jobs
        self.deliveries = deliveries

    def setup(self) -> None:
        """Create the consumer group; from the stream's start, so nothing is skipped."""
        try:
            self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def poll(self, block_ms: int | None = 1000) -> int:
        """Dispatch one batch of new entries (waiting up to ``block_ms``; None: no wait)."""
        entries = self._read(BATCH, block_ms)
        self.dispatch(entries)
        return len(entries)

    def _read(self, count: int, block_ms: int | None, start: str = ">") -> list[Entry]:
        reply: Any = self.redis.xreadgroup(
            GROUP, self.consumer, {self.stream: start}, count=count, block=block_ms
        )
        entries: list[Entry] = reply[0][1] if reply else []
        return entries

    def resume(self) -> int:
        """Hand over the entries this dispatcher read but had not handed over when it lost
        Redis (its own pending entries: another dispatcher would wait CLAIM_IDLE_MS)."""
        total = 0
        while entries := [e for e in self._read(BATCH, None, start="0") if e and e[1]]:
            self.dispatch(entries)
            total += len(entries)
        return total

    def reclaim(self, min_idle_ms: int = CLAIM_IDLE_MS) -> int:
        """Take over entries another dispatcher read but never handed over."""
        claimed: Any = self.redis.xautoclaim(
            self.stream, GROUP, self.consumer, min_idle_time=min_idle_ms, count=BATCH
        )
        entries: list[Entry] = [e for e in claimed[1] if e and e[1]]
        self.dispatch(entries)
        return len(entries)

    def beat(self) -> None:
        """Say this dispatcher is alive (see BEAT_SECONDS)."""
        self.redis.zadd(self.beats, {self.consumer: time.time()})

    def leave(self) -> None:
        """This dispatcher stopped: no longer counted as alive."""
        self.redis.zrem(self.beats, self.consumer)

    def drain(self) -> int:
        """Dispatch everything currently in the stream (tests, and resync after a restart)."""
        total = 0
        while n := self.poll(block_ms=None):
            total += n
        return total

    def dispatch(self, entries: list[Entry]) -> None:
        """Enqueue the entries' deliveries, then acknowledge and delete the entries."""
        if not entries:
            return
        targets = {t.id: t for t in self.targets() if t.enabled}
        origins: dict[tuple[str, str], str] = {}
        plan = self.plan([_fields(f) for _, f in entries], list(targets.values()), origins)
        quarantined = self.deliveries.quarantined([t for t, _ in plan])
        for (target_id, urgent), items in plan.items():
            target = targets[target_id]
            if target_id in quarantined and not target.shadow:
                # no job until the target answers again: its probe releases what waits
                pairs = [(as_kind(kind), rid) for kind, rid in items]
                self.deliveries.hold_all(target_id, pairs, "circuit", "target quarantined")
                log.info(
                    "held %d changes for %s: target quarantined",
                    len(pairs),
                    target.name,
                    extra={"target": target.name, "held": len(pairs)},
                )
                continue
            self.jobs.changed(
                self.deliveries,
                target_id,
                items,
                concurrency=target.concurrency,
                urgent=urgent,
                origins=_origins_of(items, origins),
            )
        ids = [entry_id for entry_id, _ in entries]
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()

    def plan(
        self,
        changes: list[dict[str, Any]],
        targets: list[Target],
        origins: dict[tuple[str, str], str] | None = None,
    ) -> dict[tuple[str, bool], list[list[str]]]:
        """Which (target, urgent) lane gets which resources, each once, users first.

        ``origins`` is filled with the request id of the latest change that concerns each
        resource (a change written by a SCIM request carries it as ``req``)."""
        plan: dict[tuple[str, bool], dict[tuple[str, str], None]] = {}
        for change in changes:
            urgent = takes_access_away(change)
            request_id = change.get("req")
            for target in targets:
                for item in relevant_items(target, change):
                    plan.setdefault((target.id, urgent), {})[item] = None
                    if origins is not None and request_id:
                        origins[item] = request_id
        return {key: _users_first(items) for key, items in plan.items()}


def takes_access_away(change: dict[str, Any]) -> bool:
    """A change that may take access away (a disable, a delete, members leaving a group)
    is relayed in the lane that workers serve first."""
    return change.get("deprovision") == "1" or change["op"] == "deleted" or "removed" in change


def _users_first(items: dict[tuple[str, str], None]) -> list[list[str]]:
    return [list(i) for i in items if i[0] == "user"] + [list(i) for i in items if i[0] != "user"]


def relevant_items(target: Target, change: dict[str, Any]) -> list[tuple[Kind, str]]:
    """The resources ``target`` must re-examine after ``change``."""
    kind, rid = change["kind"], change["id"]
    items: list[tuple[Kind, str]] = []
    if kind == "user":
        if target.receives("user"):
            items.append(("user", rid))
        return items
    in_scope = target.scope_type != "groups" or rid in target.scope_groups
    if target.receives("group") and in_scope:
        items.append(("group", rid))
    if target.receives("user") and rid in target.scope_groups:
        # joining or leaving a scoping group provisions or deprovisions the user
        moved = orjson.loads(change.get("added", "[]")) + orjson.loads(change.get("removed", "[]"))
        items.extend(("user", uid) for uid in moved)
    return items


def _origins_of(items: list[list[str]], origins: dict[tuple[str, str], str]) -> dict[str, str]:
    """The request ids of ``items``, by ``kind:id``."""
    found: dict[str, str] = {}
    for kind, rid in items:
        request_id = origins.get((kind, rid))
        if request_id:
            found[f"{kind}:{rid}"] = request_id
    return found


def _fields(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


class DispatcherThread(threading.Thread):
    """Runs a dispatcher beside a worker until ``stop`` is set, through Redis restarts: a
    Redis that came back empty has lost the consumer group, which is then made again."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.dispatcher = dispatcher
        self.stop = threading.Event()

    def run(self) -> None:
        """Dispatch the change stream until stopped; Redis errors are waited out, not fatal."""
        ready = False
        reclaimed = 0.0
        beaten = 0.0
        while not self.stop.is_set():
            try:
                if time.monotonic() - beaten > BEAT_SECONDS:
                    self.dispatcher.beat()
                    beaten = time.monotonic()
                if not ready:
                    self.dispatcher.setup()
                    self.dispatcher.resume()
                    ready = True
                if time.monotonic() - reclaimed > RECLAIM_SECONDS:
                    self.dispatcher.reclaim()
                    reclaimed = time.monotonic()
                handed = self.dispatcher.poll()
                if 0 < handed < BATCH:
                    # let changes that arrive meanwhile gather into the next read
                    self.stop.wait(gather_after(handed))
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning(
                        "dispatcher: the change stream's consumer group is gone; making it again"
                    )
                    ready = False
                else:
                    log.exception("dispatcher: Redis refused a command; retrying")
                    self.stop.wait(RETRY_SECONDS)
            except redis.RedisError as exc:
                log.warning("dispatcher: Redis error (%s); retrying", exc)
                ready = False
                self.stop.wait(RETRY_SECONDS)

        try:
            self.dispatcher.leave()
        except redis.RedisError:
            pass  # its beat lapses by itself
