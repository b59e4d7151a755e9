"""Targets that fail for a while: answers 5xx, time out, hang on connect, or are down."""

from __future__ import annotations

from tests.faults.invariant import converge


def test_target_answering_5xx_then_recovering_converges(bridge, fakes):
    hook = fakes.webhook(bridge)
    scim = fakes.scim(bridge)
    hook.fake.knobs.fail(3, 503)
    scim.fake.knobs.fail(3, 500)
    group = bridge.create_group()
    users = [bridge.create_user() for _ in range(4)]
    bridge.members(group["id"], "add", [u["id"] for u in users])
    converge(bridge, [hook, scim])
    assert hook.fake.knobs.failed == 3 and scim.fake.knobs.failed == 3
