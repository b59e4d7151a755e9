"""One slow target among fast ones: each target's deliveries go at that target's pace."""

from __future__ import annotations

import time

from tests.faults.invariant import Directory, converge, differences

SLOW_SECONDS = 1.5
"""How long the slow target takes to answer each delivery."""

FIRST_WAVE = 6
"""Users the slow target is busy with when the second wave arrives."""


def test_fast_target_converges_while_the_slow_one_is_still_busy(bridge, fakes):
    slow = fakes.webhook(bridge)
    fast = fakes.webhook(bridge)
    slow.fake.knobs.slow(SLOW_SECONDS)
    for _ in range(FIRST_WAVE):
        bridge.create_user()
    _wait(lambda: slow.fake.knobs.requests >= 1, timeout=10)
    for _ in range(2):
        bridge.create_user()
    deadline = time.monotonic() + FIRST_WAVE * SLOW_SECONDS * 2
    while differences(fast, Directory.read(bridge), bridge):
        assert time.monotonic() < deadline, "the fast target never converged"
        time.sleep(0.1)
    behind = slow.fake.model.count()
    slow.fake.knobs.slow(0)
    assert behind < FIRST_WAVE, (
        f"the fast target converged only after the slow one had taken {behind} deliveries"
    )
    converge(bridge, [slow, fast])


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
