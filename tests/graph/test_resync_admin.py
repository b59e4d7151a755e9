"""Full resync and on-demand reconciliation through the admin API and the CLI, run by real
workers against the fake Graph; heals flow to targets through the fan-out pipeline."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from app import create_app
from bridge.delivery.jobs import SYNC_QUEUE
from bridge.graph.schedule import tick
from tests.factories import entra_user
from workers.context import context


@pytest.fixture
def hook(app, receiver):
    """A webhook target at the live receiver."""
    context().targets.create(
        {"name": "hook", "kind": "webhook", "url": receiver.url + "/e", "signing_secret": receiver.secret,
         "resources": ["users", "groups"], "scope": {"type": "all"}}
    )  # fmt: skip
    return receiver


def test_resync_runs_graph_to_directory_to_targets(admin, pipeline, hook, fake_graph, scim):
    tenant = fake_graph.tenant
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    response = admin.post("/resync", json={"mode": "both"})
    assert response.status_code == 202
    assert response.json["status"] == "queued"
    pipeline.run()
    status = admin.get("/resync").json
    assert status["current"]["status"] == "completed"
    assert status["current"]["drift"]["missing"] == 1
    assert [e["data"]["resource"]["userName"] for e in hook.of("user.created")] == [
        "ada@contoso.test"
    ]


def test_only_one_resync_runs_at_a_time(admin):
    assert admin.post("/resync", json={}).status_code == 202
    response = admin.post("/resync", json={})
    assert response.status_code == 409
    assert "already running" in response.json["message"]


def test_cancelled_resync_stops(admin, pipeline, fake_graph):
    fake_graph.tenant.assign(fake_graph.tenant.add_user()["id"])
    admin.post("/resync", json={})
    assert admin.post("/resync/cancel", json={}).status_code == 200
    pipeline.run()
    assert admin.get("/resync").json["current"]["status"] == "cancelled"


def test_cancel_without_a_run_is_409(admin):
    assert admin.post("/resync/cancel", json={}).status_code == 409


def test_guarded_resync_waits_for_confirmation(admin, pipeline, fake_graph, scim, monkeypatch):
    tenant = fake_graph.tenant
    people = [tenant.add_user(mailNickname=f"u{i}") for i in range(4)]
    for person in people:
        tenant.assign(person["id"])
    admin.post("/resync", json={"mode": "graph"})
    pipeline.run()
    for person in people[:3]:
        tenant.unassign(person["id"])
    admin.post("/resync", json={"mode": "graph"})
    pipeline.run()
    status = admin.get("/resync").json
    assert status["current"]["status"] == "awaiting_confirmation"
    assert status["pending_deprovisions"] == 3
    assert admin.post("/resync/confirm", json={}).status_code == 202
    pipeline.run()
    assert admin.get("/resync").json["current"]["status"] == "completed"
    inactive = [u for u in scim.get("/Users").json["Resources"] if u["active"] is False]
    assert len(inactive) == 3


def test_dry_run_resync_reports_without_changing(admin, pipeline, fake_graph, scim):
    fake_graph.tenant.assign(fake_graph.tenant.add_user()["id"])
    admin.post("/resync", json={"mode": "both", "dry_run": True})
    pipeline.run()
    assert admin.get("/resync").json["current"]["drift"]["missing"] == 1
    assert scim.get("/Users").json["totalResults"] == 0


def test_reconcile_one_user_now(admin, fake_graph, scim):
    ada = fake_graph.tenant.add_user(mailNickname="ada")
    fake_graph.tenant.assign(ada["id"])
    response = admin.post("/reconcile/object", json={"kind": "user", "key": "ada@contoso.test"})
    assert response.status_code == 200
    assert response.json["drift"]["missing"] == 1
    assert scim.get("/Users").json["Resources"][0]["userName"] == "ada@contoso.test"


def test_cli_reconcile_dry_run_prints_the_drift(app, fake_graph):
    fake_graph.tenant.assign(fake_graph.tenant.add_user()["id"])
    result = app.test_cli_runner().invoke(args=["reconcile", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert '"missing": 1' in result.output


def test_cli_resync_start_and_status(app, pipeline, fake_graph):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["resync", "start", "--mode", "graph"]).exit_code == 0
    pipeline.run()
    result = runner.invoke(args=["resync", "status"])
    assert "completed" in result.output


def test_scheduled_reconciliation_is_enqueued_once_per_interval(app, settings):
    ctx = context()
    assert tick(ctx.redis, "bridge", settings.graph, ctx.jobs) is True
    assert tick(ctx.redis, "bridge", settings.graph, ctx.jobs) is False
    assert [j.func_name for j in ctx.queues[SYNC_QUEUE].get_jobs()] == ["workers.reconcile.resync"]


def test_targets_phase_counts_deliveries_until_they_settle(admin, pipeline, hook, scim):
    """Progress counts the work that remains, deliveries included: a run that only queued
    its deliveries is still running."""
    for _ in range(3):
        scim.post("/Users", json=entra_user())
    pipeline.run()
    hook.events.clear()
    assert admin.post("/resync", json={"mode": "targets"}).status_code == 202
    ctx = context()
    job = ctx.queues[SYNC_QUEUE].dequeue_any([ctx.queues[SYNC_QUEUE]], None, connection=ctx.redis)
    job[0].perform()  # the resync job alone: it queues its deliveries
    current = admin.get("/resync").json["current"]
    assert (current["status"], current["phase"]) == ("running", "targets")
    assert (current["done"], current["total"]) == (0, 3)
    pipeline.run()
    current = admin.get("/resync").json["current"]
    assert (current["status"], current["done"], current["total"]) == ("completed", 3, 3)


def test_resync_that_cannot_reach_graph_fails_and_wait_exits_non_zero(app, pipeline, fake_graph):
    fake_graph.reject_tokens = True
    runner = app.test_cli_runner()
    results: list = []
    waiting = threading.Thread(
        target=lambda: results.append(runner.invoke(args=["resync", "start", "--wait"]))
    )
    waiting.start()
    while waiting.is_alive():
        pipeline.run()
        waiting.join(0.2)
    (result,) = results
    assert result.exit_code == 1, result.output
    assert "failed" in result.output


def test_reconcile_that_recorded_errors_exits_non_zero(
    settings, redis_client, fake_graph, tmp_path
):
    names = tmp_path / "groups.json"
    names.write_text('{"displayName": "mail"}')  # Graph's groups here have no mail
    graph = dataclasses.replace(settings.graph, group_mapping_file=str(names))
    app = create_app(dataclasses.replace(settings, graph=graph))
    tenant = fake_graph.tenant
    tenant.assign(tenant.add_group(members=[tenant.add_user(mailNickname="ada")["id"]])["id"])
    result = app.test_cli_runner().invoke(args=["reconcile"])
    assert '"status": "completed_with_errors"' in result.output
    assert result.exit_code == 1
