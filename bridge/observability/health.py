"""Is the bridge working? What ``/readyz`` reports and the metrics' liveness gauges read.

Only Redis decides readiness: without it the web tier cannot answer SCIM, with it the web
tier can, even while no worker runs (changes wait in the stream). The rest is reported
without failing: whether worker lanes, change-stream dispatchers and RQ schedulers are
alive (from the heartbeats they already leave in Redis), and whether the change stream
drains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis
from rq import Worker
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.utils import utcparse

from bridge.delivery.dispatcher import GROUP, beats_key
from bridge.delivery.jobs import QUEUES
from bridge.directory.reader import changes_key

DISPATCHER_ALIVE_SECONDS = 10.0
"""Dispatchers beat every second (bridge.delivery.dispatcher.BEAT_SECONDS); one silent
this long is gone."""

FORGET_DISPATCHER_SECONDS = 24 * 3600
"""Beats older than this are dropped from the set when it is read."""

SCHEDULER_ALIVE_SECONDS = 10.0
"""Schedulers beat every second."""

STALLED_SECONDS = 60.0
"""The change stream's oldest entry older than this means it is not draining."""


@dataclass
class StreamState:
    """The change stream as health and metrics report it: backlog, pending, lag, readers."""

    length: int
    pending: int
    oldest_age_seconds: float
    dispatchers: int

    @property
    def state(self) -> str:
        """``idle`` (empty), ``draining`` (entries, but young ones) or ``stalled``."""
        if self.length == 0:
            return "idle"
        if self.oldest_age_seconds > STALLED_SECONDS or self.dispatchers == 0:
            return "stalled"
        return "draining"


def stream_state(client: redis.Redis, prefix: str) -> StreamState:
    """The change stream in one round trip: length, entries read but not yet handed
    over, age of the oldest entry (the dispatcher deletes what it handed over, so that is
    the oldest change not yet turned into jobs), and dispatchers alive."""
    stream, beats = changes_key(prefix), beats_key(prefix)
    now = time.time()
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xrange(stream, count=1)
    pipe.xinfo_groups(stream)
    pipe.zremrangebyscore(beats, 0, now - FORGET_DISPATCHER_SECONDS)
    pipe.zcount(beats, now - DISPATCHER_ALIVE_SECONDS, "+inf")
    length, first, groups, _, alive = pipe.execute(raise_on_error=False)
    if isinstance(length, Exception):
        raise length
    age = 0.0
    if first and not isinstance(first, Exception):
        millis = int(first[0][0].split(b"-")[0])
        age = max(0.0, now - millis / 1000)
    pending = 0
    if not isinstance(groups, Exception):
        for group in groups:
            if group["name"] in (GROUP, GROUP.encode()):
                pending = int(group["pending"])
    if isinstance(alive, Exception):
        raise alive
    return StreamState(int(length), pending, round(age, 3), int(alive))


def schedulers_alive(client: redis.Redis) -> dict[str, bool]:
    """For each queue, whether a live RQ scheduler holds its lock (delayed retries and
    probes are released only by one)."""
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.get(RQScheduler.get_locking_key(queue))
    holders = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for holder in holders:
        pipe.hget(SCHEDULER_KEY_TEMPLATE % (holder or b"").decode(), "last_heartbeat")
    beats = pipe.execute()
    now = time.time()
    alive = {}
    for queue, holder, beat in zip(QUEUES, holders, beats, strict=True):
        ok = False
        if holder and beat:
            ok = now - utcparse(beat.decode()).timestamp() < SCHEDULER_ALIVE_SECONDS
        alive[queue] = ok
    return alive


def workers_alive(client: redis.Redis) -> dict[str, Any]:
    """Registered worker lanes (RQ drops a lane whose process stopped heart-beating)
    and the processes they belong to, by the queues they serve."""
    lanes = Worker.all(connection=client)
    processes = {(w.hostname, w.pid) for w in lanes}
    by_queue: dict[str, int] = {}
    for w in lanes:
        for name in w.queue_names():
            by_queue[name] = by_queue.get(name, 0) + 1
    return {"lanes": len(lanes), "processes": len(processes), "queues": by_queue}


def readiness(client: redis.Redis, prefix: str) -> tuple[dict[str, Any], int]:
    """The ``/readyz`` body and status: 503 only when Redis does not answer."""
    try:
        client.ping()
    except redis.RedisError:
        return {"status": "redis unavailable"}, 503
    try:
        changes = stream_state(client, prefix)
        workers = workers_alive(client)
        schedulers = schedulers_alive(client)
    except redis.RedisError:
        return {"status": "redis unavailable"}, 503
    return {
        "status": "ok",
        "redis": "ok",
        "workers": {"alive": workers["processes"] > 0, **workers},
        "dispatchers": {"alive": changes.dispatchers > 0, "count": changes.dispatchers},
        "scheduler": {"alive": all(schedulers.values()), "queues": schedulers},
        "changes": {
            "state": changes.state,
            "draining": changes.state != "stalled",
            "length": changes.length,
            "pending": changes.pending,
            "oldest_age_seconds": changes.oldest_age_seconds,
        },
    }, 200
