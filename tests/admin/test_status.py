"""GET /admin/status and ``flask --app app status``: what the bridge is doing."""

from __future__ import annotations

from tests.admin.conftest import webhook
from tests.factories import entra_user


def test_status_shows_directory_stream_queues_and_targets(admin, scim, receiver):
    admin.post("/targets", json=webhook(receiver))
    scim.post("/Users", json=entra_user())
    body = admin.get("/status").json
    assert body["directory"] == {"users": 1, "groups": 0}
    assert body["changes"]["length"] == 1
    assert set(body["queues"]) == {"bridge", "bridge-deprovision", "bridge-sync"}
    assert [t["name"] for t in body["targets"]] == ["hook"]
    assert body["targets"][0]["breaker"] == "closed"
    assert body["graph_configured"] is False


def test_status_after_delivery_has_an_empty_stream_and_queues(admin, scim, receiver, pipeline):
    admin.post("/targets", json=webhook(receiver))
    scim.post("/Users", json=entra_user())
    pipeline.run()
    body = admin.get("/status").json
    changes = body["changes"]
    assert (changes["length"], changes["pending"], changes["state"]) == (0, 0, "idle")
    assert all(q["queued"] == 0 for q in body["queues"].values())


def test_status_needs_an_admin_token(app):
    assert app.test_client().get("/admin/status").status_code == 401


def test_status_command_prints_the_same(app, scim):
    scim.post("/Users", json=entra_user())
    result = app.test_cli_runner().invoke(args=["status"])
    assert result.exit_code == 0, result.output
    assert '"users": 1' in result.output
