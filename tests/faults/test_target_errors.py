"""Targets that fail for a while: they answer 5xx, time out, hang on connect, or are down."""

from __future__ import annotations

import time

from tests.fakes.blackhole import Blackhole
from tests.faults.harness import FAST_ENV
from tests.faults.invariant import converge, holds_within

READ_TIMEOUT = float(FAST_ENV["BRIDGE_TARGET_READ_TIMEOUT"])
CONNECT_TIMEOUT = float(FAST_ENV["BRIDGE_TARGET_CONNECT_TIMEOUT"])


def _populate(bridge, users: int = 3) -> None:
    group = bridge.create_group()
    ids = [bridge.create_user()["id"] for _ in range(users)]
    bridge.members(group["id"], "add", ids)


def _wait_failure(bridge, handle, timeout: float) -> dict:
    """The first failed attempt in the target's delivery log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failed = [d for d in bridge.deliveries(handle) if d["outcome"] == "failed"]
        if failed:
            return failed[-1]
        time.sleep(0.2)
    raise AssertionError(f"no failed attempt within {timeout} s: {bridge.deliveries(handle)}")


def test_target_answering_5xx_then_recovering_converges(bridge, fakes):
    hook = fakes.webhook(bridge)
    scim = fakes.scim(bridge)
    hook.fake.knobs.fail(3, 503)
    scim.fake.knobs.fail(3, 500)
    _populate(bridge, users=4)
    converge(bridge, [hook, scim])
    assert hook.fake.knobs.failed == 3 and scim.fake.knobs.failed == 3


def test_target_slower_than_the_read_timeout_is_retried_and_converges(bridge, fakes):
    hook = fakes.webhook(bridge)
    hook.fake.knobs.hang(1, READ_TIMEOUT * 4)
    bridge.create_user()
    converge(bridge, [hook], timeout=READ_TIMEOUT * 4 + 15)
    timeouts = [
        d
        for d in bridge.deliveries(hook)
        if d["outcome"] == "failed" and "read timeout" in d["error"]
    ]
    assert timeouts, f"no attempt timed out: {bridge.deliveries(hook)}"


def test_target_hanging_on_connect_fails_at_the_connect_timeout(bridge, fakes):
    healthy = fakes.webhook(bridge)
    hole = Blackhole()
    try:
        hung = bridge.add_webhook_url(hole.url + "/events")
        bridge.create_user()
        holds_within(bridge, [healthy], timeout=15)
        failure = _wait_failure(bridge, hung, timeout=15)
    finally:
        hole.close()
    assert "connect timeout" in failure["error"], failure
    assert failure["latency_ms"] < CONNECT_TIMEOUT * 2000, failure


def test_target_down_past_every_retry_is_healed_by_replaying_its_dead_letters(bridge, fakes):
    hook = fakes.webhook(bridge)
    hook.fake.server.down()
    _populate(bridge, users=2)
    assert bridge.wait_quiet(60), f"retries never ended: {bridge.status()}"
    dead = bridge.failed(hook)
    assert {d["kind"] for d in dead} == {"user", "group"}, dead
    hook.fake.server.up()
    assert bridge.replay_failed(hook) == len(dead)
    converge(bridge, [hook])
