"""Resync runs: one at a time per scope, with progress, cancel and confirmation.

Keys::

    {p}:resync:{scope}            hash: the current (or last) run
    {p}:resync:{scope}:lock       held while a run is active (expires if its worker dies)
    {p}:resync:{scope}:pending    deprovisions a guarded run waits to have confirmed (JSON)
    {p}:resync:{scope}:history    recent finished runs, newest first
    {p}:resync:{scope}:remaining  deliveries the run's targets phase still waits for
                                  ("<target id>|<kind>:<id>"): its progress counts them
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import redis

from bridge.errors import Conflict
from bridge.observability import metrics
from bridge.runtime import clock

LOCK_SECONDS = 600
"""A run refreshes its lock as it goes; a dead worker's lock lapses after this long."""

HISTORY_LENGTH = 50

ACTIVE = ("queued", "running")


class AlreadyRunning(Conflict):
    """Another resync of the same scope is queued or running."""

    pass


def _now() -> str:
    return clock.now()


class Runs:
    """The resync runs of each scope: the current one, its progress, and the history."""

    def __init__(self, client: redis.Redis, prefix: str = "bridge") -> None:
        self.redis = client
        self.prefix = prefix

    def _key(self, scope: str, suffix: str = "") -> str:
        return f"{self.prefix}:resync:{scope}{suffix}"

    def start(self, scope: str, **params: Any) -> str:
        """Register a run; AlreadyRunning while another one holds the scope."""
        run_id = uuid.uuid4().hex[:12]
        if not self.redis.set(self._key(scope, ":lock"), run_id, nx=True, ex=LOCK_SECONDS):
            raise AlreadyRunning(f"a resync of {scope!r} is already running")
        record = {
            "id": run_id,
            "scope": scope,
            "status": "queued",
            "phase": "queued",
            "done": 0,
            "total": 0,
            "drift": {},
            "errors": [],
            "started": _now(),
            "finished": None,
            "cancel": False,
            **params,
        }
        self.redis.set(self._key(scope), orjson.dumps(record))
        return run_id

    # --- deliveries a run waits for --------------------------------------------------------
    def expect(self, scope: str, target_id: str, items: list[list[str]]) -> None:
        """Count ``items`` as work the run waits for until a delivery settles each."""
        if items:
            members = [f"{target_id}|{kind}:{rid}" for kind, rid in items]
            self.redis.sadd(self._key(scope, ":remaining"), *members)

    def settle(self, scope: str, target_id: str, items: list[str]) -> None:
        """``items`` (``kind:id``) reached a final result for this run's target."""
        if items:
            self.redis.srem(self._key(scope, ":remaining"), *(f"{target_id}|{i}" for i in items))

    def remaining(self, scope: str) -> int:
        """How many deliveries the run's targets phase still waits for."""
        return int(self.redis.scard(self._key(scope, ":remaining")))

    def forget_remaining(self, scope: str) -> None:
        """Drop what the previous targets phase waited for, before counting anew."""
        self.redis.delete(self._key(scope, ":remaining"))

    def get(self, scope: str) -> dict[str, Any] | None:
        """The current (or last) run of ``scope``; None before the first."""
        raw = self.redis.get(self._key(scope))
        return orjson.loads(raw) if raw else None

    def update(self, scope: str, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the run and refresh its lock."""
        record = self.get(scope) or {}
        record.update(fields)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self._key(scope), orjson.dumps(record))
        pipe.expire(self._key(scope, ":lock"), LOCK_SECONDS)
        pipe.execute()
        return record

    def cancel(self, scope: str) -> bool:
        """Ask the running run to stop; False when none is running."""
        record = self.get(scope)
        if not record or record["status"] not in (*ACTIVE, "awaiting_confirmation"):
            return False
        if record["status"] == "awaiting_confirmation":
            self.finish(scope, "cancelled")
        else:
            self.update(scope, cancel=True)
        return True

    def cancelled(self, scope: str) -> bool:
        """Whether the run was asked to stop (checked between pages)."""
        record = self.get(scope)
        return bool(record and record.get("cancel"))

    def finish(self, scope: str, status: str, **fields: Any) -> dict[str, Any]:
        """End the run with ``status``, keep it in the history and release the lock."""
        fields = {k: v for k, v in fields.items() if k not in ("status", "phase", "finished")}
        record = self.update(scope, status=status, phase="done", finished=_now(), **fields)
        metrics.observe_run(status, record.get("drift"))
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self._key(scope, ":lock"))
        pipe.delete(self._key(scope, ":remaining"))
        pipe.lpush(self._key(scope, ":history"), orjson.dumps(record))
        pipe.ltrim(self._key(scope, ":history"), 0, HISTORY_LENGTH - 1)
        if status != "awaiting_confirmation":
            pipe.delete(self._key(scope, ":pending"))
        pipe.execute()
        return record

    def await_confirmation(
        self, scope: str, pending: list[dict[str, Any]], **fields: Any
    ) -> dict[str, Any]:
        """Stop a run before its deprovisions; they wait here for an admin."""
        self.redis.set(self._key(scope, ":pending"), orjson.dumps(pending))
        fields = {k: v for k, v in fields.items() if k not in ("status", "phase")}
        record = self.update(
            scope, status="awaiting_confirmation", phase="awaiting_confirmation", **fields
        )
        self.redis.delete(self._key(scope, ":lock"))
        return record

    def pending(self, scope: str) -> list[dict[str, Any]]:
        """The deprovisions a guarded run holds back until confirmed."""
        raw = self.redis.get(self._key(scope, ":pending"))
        return orjson.loads(raw) if raw else []

    def history(self, scope: str, limit: int = 10) -> list[dict[str, Any]]:
        """Recent runs, newest first."""
        return [
            orjson.loads(r) for r in self.redis.lrange(self._key(scope, ":history"), 0, limit - 1)
        ]
