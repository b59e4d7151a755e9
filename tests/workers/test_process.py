"""What a worker process runs, by role: every role its lanes, ticker, scheduler and
heartbeats; only the roles that deliver a change-stream dispatcher."""

from __future__ import annotations

import pytest

from bridge.delivery.jobs import PRIORITY_QUEUE, QUEUE, SYNC_QUEUE
from workers.process import WorkerProcess


def thread_names(process: WorkerProcess) -> set[str]:
    return {thread.name for thread in process.threads if thread not in process.lanes}


@pytest.mark.parametrize("role", ["deliver", "all"])
def test_a_delivering_worker_runs_a_dispatcher(app, role):
    process = WorkerProcess(app.extensions["bridge"], role)
    assert "dispatcher" in thread_names(process)


def test_a_sync_worker_relays_nothing_and_serves_only_resyncs(app):
    process = WorkerProcess(app.extensions["bridge"], "sync")
    assert "dispatcher" not in thread_names(process)
    assert {"scheduler", "heartbeats", "maintenance"} <= thread_names(process)
    assert {lane.queue for lane in process.lanes} == {SYNC_QUEUE}


def test_a_deliver_worker_serves_both_delivery_queues(app):
    process = WorkerProcess(app.extensions["bridge"], "deliver")
    assert {lane.queue for lane in process.lanes} == {PRIORITY_QUEUE, QUEUE}
