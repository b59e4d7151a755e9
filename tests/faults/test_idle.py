"""A delivery after a long idle spell goes out at once (no stalled blocking dequeue)."""

from __future__ import annotations

import time

from tests.faults.client import BridgeClient
from tests.faults.invariant import converge, holds_within

IDLE_SECONDS = 45
"""Many times the blocking dequeue (BRIDGE_WORKER_TTL_SECONDS minus 15) and the Redis
timeout: a worker whose dequeue outlasts its socket timeout backs off 1, 2, 4, 8, 16 s...
and is asleep from about 40 to 56 s of idleness."""


def test_patch_after_an_idle_spell_reaches_the_webhook_within_seconds(make_stack, fakes):
    bridge = BridgeClient(make_stack())  # its own: a long-idle worker would slow the next test
    try:
        hook = fakes.webhook(bridge)
        user = bridge.create_user()
        converge(bridge, [hook])
        time.sleep(IDLE_SECONDS)
        bridge.set_user(user["id"], "displayName", "After the idle spell")
        holds_within(bridge, [hook], timeout=5)
    finally:
        bridge.close()
