"""Coalesced changes per target lane: a pending set that the lane's jobs take from.

However often a resource changes while its target is busy or down, it waits in its lane
once; the job queued for the lane takes everything pending (``lua/take.lua``), and the
request ids of those changes go with it for the log.

A job that took something comes back for more when it has delivered it, until it finds
the lane empty: it is the lane's *taker*, and a change made meanwhile waits for it rather
than queueing a job of its own (``lua/pend.lua``). Under a steady stream of writes one job
then carries many changes, and what RQ spends on a job (queueing, registries,
heartbeats) is spent once for them. A taker that already has changes waiting is busy
with a slow delivery, so the next change queues a job beside it, up to the lane's
concurrency. A taker that stops early hands the lane over (``lua/hand_off.lua``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import redis
from redis.commands.core import Script

from bridge.directory.stored import Kind, as_kind, as_text

TAKEN_SECONDS = 7 * 24 * 3600
"""What a job took outlives the job by this long at most (its failed entry lives a week)."""

TAKE_LIMIT = 20
"""Items a job takes from its lane at once: it looks at the clock, and whether its worker
is stopping, between two takes (20 at 1.5 s each: 30 s)."""

QUEUED_MARK_SECONDS = 24 * 3600
"""How long a lane remembers its taker (the job queued, or running, to take its pending
items); whether that job still waits or runs is checked each time (a job lost with
Redis, or never queued, is replaced)."""


def item(kind: str, rid: str) -> str:
    """An item's text: ``kind:id``."""
    return f"{kind}:{rid}"


def split_item(text: str) -> tuple[Kind, str]:
    """An item's text back into (kind, id)."""
    kind, _, rid = text.partition(":")
    return as_kind(kind), rid


class Taken(NamedTuple):
    """What a take returns: the items, whether the job is still the lane's taker although
    it took nothing, and the targets' configuration version when it was asked for."""

    items: list[tuple[Kind, str]]
    kept: bool
    version: str | None = None


class PendingChanges:
    """The lanes' pending sets, as part of :class:`bridge.delivery.deliveries.Deliveries`."""

    redis: redis.Redis
    _pend: Script
    _take: Script
    _hand_off: Script

    def key(self, target_id: str, name: str) -> str:  # pragma: no cover - Deliveries'
        raise NotImplementedError

    # --- coalesced changes ------------------------------------------------------------------
    def pend(
        self,
        target_id: str,
        lane: str,
        items: list[list[str]],
        job_prefix: str,
        job_id: str,
        origins: dict[str, str] | None = None,
    ) -> bool:
        """Add ``items`` to the lane's pending set, in one round trip; True when no job waits
        to take them: ``job_id`` is then recorded as the lane's queued job, and the caller
        queues a job of that id. ``job_prefix`` is where RQ keeps its jobs' hashes.
        ``origins`` (``kind:id`` -> request id) are kept for the job that takes the items."""
        pending = self.key(target_id, f"pending:{lane}")
        pairs = [part for pair in (origins or {}).items() for part in pair]
        args: list[str | int] = [job_prefix, job_id, QUEUED_MARK_SECONDS, len(pairs) // 2]
        args += pairs
        args += [item(k, r) for k, r in items]
        keys = [pending, pending + ":queued", pending + ":origins"]
        return bool(self._pend(keys=keys, args=args))

    def take_pending(
        self,
        target_id: str,
        lane: str,
        job_id: str,
        origins: dict[str, str] | None = None,
        *,
        limit: int = TAKE_LIMIT,
    ) -> list[tuple[Kind, str]]:
        """Up to ``limit`` of the lane's pending items, now the job's, with what it took
        before and has not finished (see lua/take.lua); the request ids that changed them
        are added to ``origins`` when given. A job that gets something is the lane's taker
        until a take finds nothing (or it hands the lane over): it must come back."""
        return self.take_or_linger(target_id, lane, job_id, origins, limit=limit)[0]

    def take_or_linger(
        self,
        target_id: str,
        lane: str,
        job_id: str,
        origins: dict[str, str] | None = None,
        *,
        limit: int = TAKE_LIMIT,
        linger_in: str | None = None,
        version_key: str | None = None,
    ) -> Taken:
        """:meth:`take_pending`, and whether the job is still the lane's taker although it
        took nothing: with ``linger_in`` (the key of the job's RQ queue) a taker that finds
        the lane empty keeps it while no job waits in that queue, to come back shortly.
        With ``version_key``, the targets' configuration version is read in the same round
        trip ("" when there is none)."""
        pending = self.key(target_id, f"pending:{lane}")
        taken = self.key(target_id, f"taken:{job_id}")
        # a key not read (no linger_in, no version_key): the pending set stands in for it
        keys = [pending, pending + ":queued", taken, pending + ":origins", linger_in or pending]
        keys.append(version_key or pending)
        args: list[str | int] = [TAKEN_SECONDS, job_id, QUEUED_MARK_SECONDS, limit]
        args += ["1" if linger_in else "0", "1" if version_key else "0"]
        members, flat, kept, version = self._take(keys=keys, args=args)
        if origins is not None:
            for i in range(0, len(flat) - 1, 2):
                origins[flat[i].decode()] = flat[i + 1].decode()
        items = [split_item(i.decode()) for i in members]
        if version_key is None:
            return Taken(items, bool(kept))
        return Taken(items, bool(kept), as_text(version) if version else "")

    def hand_off(
        self,
        target_id: str,
        lane: str,
        job_id: str,
        new_job_id: str,
        job_prefix: str,
        *,
        give_back: bool = False,
    ) -> bool:
        """The taker ``job_id`` stops before the lane is empty: True when ``new_job_id``
        is now the taker, for the caller to queue (see lua/hand_off.lua). ``give_back``:
        the job will not run again, and what it had taken waits in the lane again."""
        pending = self.key(target_id, f"pending:{lane}")
        keys = [pending, pending + ":queued", self.key(target_id, f"taken:{job_id}")]
        args: list[str | int] = [job_id, new_job_id, QUEUED_MARK_SECONDS, job_prefix]
        args.append("1" if give_back else "0")
        return bool(self._hand_off(keys=keys, args=args))

    def done_with(self, target_id: str, job_id: str, items: Sequence[tuple[Kind, str]]) -> None:
        """The job finished with ``items`` (delivered, or handed to a retry job)."""
        if items:
            self.redis.srem(self.key(target_id, f"taken:{job_id}"), *(item(k, r) for k, r in items))

    def pending_items(self, target_id: str, lane: str) -> list[tuple[Kind, str]]:
        """The items waiting in one lane, sorted."""
        raw = self.redis.smembers(self.key(target_id, f"pending:{lane}"))
        return sorted(split_item(as_text(i)) for i in raw)

    def pending(self, target_id: str) -> int:
        """Items waiting in the target's lanes for a job to take them."""
        pipe = self.redis.pipeline(transaction=False)
        for lane in ("changes", "deprovision"):
            pipe.scard(self.key(target_id, f"pending:{lane}"))
        return sum(pipe.execute())
