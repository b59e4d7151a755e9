"""``bridge resync start --wait`` / ``resync watch``: a progress bar of the run's real work
(its deliveries included), and an exit status that says how the run ended."""

from __future__ import annotations

import re
import threading

import pytest

from bridge.admin.resync_cli import BAR_WIDTH, progress_line
from bridge.delivery.jobs import SYNC_QUEUE
from tests.factories import entra_user
from workers.context import context


@pytest.fixture
def hook(app, receiver):
    context().targets.create(
        {"name": "hook", "kind": "webhook", "url": receiver.url + "/e",
         "signing_secret": receiver.secret, "scope": {"type": "all"}}
    )  # fmt: skip
    return receiver


def in_thread(app, *args: str):
    """Invoke the CLI in a thread; the test runs the pipeline meanwhile."""
    results: list = []
    runner = app.test_cli_runner()
    thread = threading.Thread(target=lambda: results.append(runner.invoke(args=list(args))))
    thread.start()
    return thread, results


def drive(thread: threading.Thread, pipeline) -> None:
    while thread.is_alive():
        pipeline.run()
        thread.join(0.2)


def test_progress_line_draws_done_over_total():
    line = progress_line({"phase": "targets", "done": 3, "total": 4})
    assert f"[{'#' * (BAR_WIDTH * 3 // 4)}{'-' * (BAR_WIDTH - BAR_WIDTH * 3 // 4)}]" in line
    assert line.endswith(" 75%  3/4")


def test_progress_line_of_an_unknown_total_has_no_percentage():
    assert progress_line({"phase": "graph", "done": 0, "total": 0}).endswith("?  0/?")


def test_watch_follows_the_deliveries_of_the_targets_phase(app, admin, pipeline, hook, scim):
    for _ in range(3):
        scim.post("/Users", json=entra_user())
    pipeline.run()
    assert admin.post("/resync", json={"mode": "targets"}).status_code == 202
    ctx = context()
    queue = ctx.queues[SYNC_QUEUE]
    queue.dequeue_any([queue], None, connection=ctx.redis)[0].perform()  # queues deliveries
    thread, results = in_thread(app, "resync", "watch")
    thread.join(0.3)  # the first drawing: deliveries queued, none settled
    drive(thread, pipeline)
    (result,) = results
    assert result.exit_code == 0, result.output
    bars = [line for line in result.output.splitlines() if re.match(r"\s+targets\s+\[", line)]
    assert bars[0].endswith("0%  0/3")
    assert re.search(r"completed .* 3/3", result.output)


def test_wait_exits_non_zero_when_the_run_is_cancelled(app, admin, pipeline, hook):
    thread, results = in_thread(app, "resync", "start", "--mode", "targets", "--wait")
    while admin.post("/resync/cancel", json={}).status_code != 200:
        thread.join(0.05)
    drive(thread, pipeline)
    (result,) = results
    assert result.exit_code == 1, result.output
    assert "cancelled" in result.output


def test_wait_exits_zero_when_the_run_completes(app, pipeline, hook, scim):
    scim.post("/Users", json=entra_user())
    pipeline.run()
    thread, results = in_thread(app, "resync", "start", "--mode", "targets", "--wait")
    drive(thread, pipeline)
    (result,) = results
    assert result.exit_code == 0, result.output
    assert "completed" in result.output
