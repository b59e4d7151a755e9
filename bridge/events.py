"""Turn the directory's change stream into delivery jobs, one per target.

The directory appends every change to the stream ``{p}:changes`` in the same Lua script
that stores it. The dispatcher reads it through a consumer group, works out which targets
a change concerns, and, in one MULTI/EXEC, enqueues the RQ delivery jobs and acknowledges
(and deletes) the entries: a change is either fully handed over or still pending. Entries
left pending by a dispatcher that died are claimed by another after CLAIM_IDLE_MS.

Any number of dispatchers may run (each worker process runs one); the consumer group
hands each entry to one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import orjson
import redis

from bridge.jobs import DELIVER_JOB, ITEMS_PER_JOB, JOB_OPTIONS, PRIORITY_QUEUE, QUEUE, queues_for
from bridge.targets.model import Target

log = logging.getLogger(__name__)

GROUP = "dispatch"
BATCH = 500
"""Stream entries read per round trip."""

LINGER_SECONDS = 0.025
"""While workers are busy, a read that found less than a batch waits this long for more:
bigger jobs amortise each job's fixed cost, so a busy worker catches up instead of falling
behind. An idle pipeline never waits."""

LINGER_SECONDS = 0.025
"""While workers are busy, a read that found less than a batch waits this long for more:
bigger jobs spread each job's fixed cost, so a busy worker catches up instead of falling
behind. An idle pipeline never waits."""

CLAIM_IDLE_MS = 30_000
"""Pending entries idle this long are taken over from a dispatcher that died."""


class Dispatcher:
    """Reads the change stream and enqueues delivery jobs."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        targets: Callable[[], list[Target]],
        consumer: str,
    ) -> None:
        self.redis = client
        self.stream = f"{prefix}:changes"
        self.targets = targets
        self.consumer = consumer
        self.queues = queues_for(client)

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
        if entries and len(entries) < BATCH and self._workers_busy():
            time.sleep(LINGER_SECONDS)
            entries += self._read(BATCH - len(entries), None)
        self.dispatch(entries)
        return len(entries)

    def _read(self, count: int, block_ms: int | None) -> list:
        reply = self.redis.xreadgroup(
            GROUP, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return reply[0][1] if reply else []

    def _workers_busy(self) -> bool:
        """Whether delivery jobs are waiting: then batching beats dispatching at once."""
        pipe = self.redis.pipeline(transaction=False)
        for queue in self.queues.values():
            pipe.llen(queue.key)
        return any(pipe.execute())

    def reclaim(self, min_idle_ms: int = CLAIM_IDLE_MS) -> int:
        """Take over entries another dispatcher read but never handed over."""
        _, entries, *_ = self.redis.xautoclaim(
            self.stream, GROUP, self.consumer, min_idle_time=min_idle_ms, count=BATCH
        )
        entries = [e for e in entries if e and e[1]]
        self.dispatch(entries)
        return len(entries)

    def drain(self) -> int:
        """Dispatch everything currently in the stream (tests, and resync after a restart)."""
        total = 0
        while n := self.poll(block_ms=None):
            total += n
        return total

    def dispatch(self, entries: list) -> None:
        if not entries:
            return
        plan = self.plan([_fields(f) for _, f in entries])
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.multi()
            for (target_id, queue), items in plan.items():
                for start in range(0, len(items), ITEMS_PER_JOB):
                    chunk = items[start : start + ITEMS_PER_JOB]
                    self.queues[queue].enqueue(
                        DELIVER_JOB, target_id, chunk, pipeline=pipe, **JOB_OPTIONS
                    )
            ids = [entry_id for entry_id, _ in entries]
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()

    def plan(self, changes: list[dict]) -> dict[tuple[str, str], list[list[str]]]:
        """Which (target, queue) gets which resources, each once, in stream order."""
        plan: dict[tuple[str, str], dict[tuple[str, str], None]] = {}
        targets = [t for t in self.targets() if t.enabled]
        for change in changes:
            urgent = change.get("deprovision") == "1" or change["op"] == "deleted"
            queue = PRIORITY_QUEUE if urgent else QUEUE
            for target in targets:
                for item in relevant_items(target, change):
                    plan.setdefault((target.id, queue), {})[item] = None
        return {key: [list(i) for i in items] for key, items in plan.items()}


def relevant_items(target: Target, change: dict) -> list[tuple[str, str]]:
    """The resources ``target`` must re-examine after ``change``."""
    kind, rid = change["kind"], change["id"]
    items: list[tuple[str, str]] = []
    if kind == "user":
        if target.receives("user"):
            items.append(("user", rid))
        return items
    in_scope = target.scope["type"] != "groups" or rid in target.scope_groups
    if target.receives("group") and in_scope:
        items.append(("group", rid))
    if target.receives("user") and rid in target.scope_groups:
        # joining or leaving a scoping group provisions or deprovisions the user
        moved = orjson.loads(change.get("added", "[]")) + orjson.loads(change.get("removed", "[]"))
        items.extend(("user", uid) for uid in moved)
    return items


def _fields(raw: dict) -> dict:
    return {k.decode(): v.decode() for k, v in raw.items()}


class DispatcherThread(threading.Thread):
    """Runs a dispatcher beside a worker until ``stop`` is set."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.dispatcher = dispatcher
        self.stop = threading.Event()

    def run(self) -> None:
        self.dispatcher.setup()
        polls = 0
        while not self.stop.is_set():
            try:
                if polls % 30 == 0:
                    self.dispatcher.reclaim()
                self.dispatcher.poll()
                polls += 1
            except redis.RedisError:
                log.exception("dispatcher: Redis error; retrying")
                self.stop.wait(1.0)
