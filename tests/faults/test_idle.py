"""A delivery after a long idle spell goes out at once (no stalled blocking dequeue)."""

from __future__ import annotations

import time

from tests.faults.invariant import converge, holds_within

IDLE_SECONDS = 30
"""Longer than the blocking dequeue (BRIDGE_WORKER_TTL_SECONDS minus 15) and the Redis
timeout, several times over: a worker whose dequeue outlasts its socket timeout fails it,
backs off 1, 2, 4, 8 s..., and lets a delivery wait."""


def test_patch_after_an_idle_spell_reaches_the_webhook_within_seconds(bridge, fakes):
    hook = fakes.webhook(bridge)
    user = bridge.create_user()
    converge(bridge, [hook])
    time.sleep(IDLE_SECONDS)
    bridge.set_user(user["id"], "displayName", "After the idle spell")
    holds_within(bridge, [hook], timeout=5)
