"""Worker processes killed with SIGKILL in the middle of deliveries lose none of them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.faults.client import BridgeClient
from tests.faults.invariant import converge

USERS = 300
KILL_AFTER = 100
"""Deliveries the webhook has taken when every worker process is killed."""

LINGERING = 0.02
"""How long after its delivery a lane's job is killed: it has finished recording it, and
lingers on its empty lane (workers.deliver.LINGER_SECONDS)."""

KILL_ATTEMPTS = 3
"""Tries at killing the job within its linger, should the machine stall past it."""

ANSWER_SECONDS = 0.05


def test_sigkill_of_every_worker_mid_delivery_loses_nothing(make_stack, fakes):
    stack = make_stack()
    bridge = BridgeClient(stack)
    try:
        hook = fakes.webhook(bridge)
        hook.fake.knobs.slow(ANSWER_SECONDS)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: bridge.create_user(), range(USERS)))
        deadline = time.monotonic() + 60
        while hook.fake.model.count() < KILL_AFTER:
            assert time.monotonic() < deadline, "deliveries never started"
            time.sleep(0.05)
        killed = stack.kill_workers()
        assert hook.fake.model.count() < USERS, "everything was delivered before the kill"
        stack.start_workers()
        assert all(not w.alive() for w in killed)
        converge(bridge, [hook], timeout=30)
    finally:
        bridge.close()


def test_changes_made_after_the_lanes_taker_was_killed_are_delivered(make_stack, fakes):
    """The killed job is still recorded as the lane's running taker, so later changes wait
    for it rather than queueing jobs of their own: RQ runs it again once its heartbeat has
    lapsed, and that run takes them too."""
    stack = make_stack()
    bridge = BridgeClient(stack)
    try:
        hook = fakes.webhook(bridge)
        hook.fake.knobs.slow(ANSWER_SECONDS)
        for _ in range(60):
            bridge.create_user()
        deadline = time.monotonic() + 60
        while hook.fake.model.count() < 10:
            assert time.monotonic() < deadline, "deliveries never started"
            time.sleep(0.05)
        stack.kill_workers()
        stack.start_workers()
        for _ in range(20):
            bridge.create_user()
        converge(bridge, [hook], timeout=45)
    finally:
        bridge.close()


def test_a_job_killed_while_it_lingers_on_its_empty_lane_loses_no_later_change(make_stack, fakes):
    """A job that delivered everything keeps its lane a moment longer for the next change;
    killed then, it is still the lane's taker, so the changes made afterwards wait for it:
    RQ runs it again once its heartbeat has lapsed, and that run delivers them."""
    stack = make_stack()
    bridge = BridgeClient(stack)
    try:
        hook = fakes.webhook(bridge)
        mark = f"{stack.prefix}:target:{hook.id}:pending:changes:queued"
        for attempt in range(KILL_ATTEMPTS):
            if attempt:
                stack.start_workers()  # the last kill came after the job had ended
            delivered = hook.fake.model.count()
            bridge.create_user()
            deadline = time.monotonic() + 30
            while hook.fake.model.count() <= delivered:
                assert time.monotonic() < deadline, "the change was never delivered"
                time.sleep(0.001)
            time.sleep(LINGERING)
            stack.kill_workers()
            if stack.client().exists(mark):
                break
        else:
            raise AssertionError("no job was killed while it held its lane")
        for _ in range(5):
            bridge.create_user()
        stack.start_workers()
        converge(bridge, [hook], timeout=45)
    finally:
        bridge.close()
