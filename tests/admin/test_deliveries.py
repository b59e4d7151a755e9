"""Probing targets, the delivery log, dead letters, held deliveries and resyncs, through
/admin against the real pipeline and a live webhook receiver."""

from __future__ import annotations

from tests.factories import entra_group, entra_user


def create_user(scim) -> dict:
    response = scim.post("/Users", json=entra_user())
    assert response.status_code == 201
    return response.json


def test_test_endpoint_is_ok_against_a_live_receiver(admin, add_webhook, receiver):
    add_webhook()
    response = admin.post("/targets/hook/test")
    assert response.status_code == 200
    assert response.json == {"ok": True, "status": 204}
    assert [e["type"] for e in receiver.events] == ["bridge.ping"]
    assert receiver.rejected == 0


def test_test_endpoint_is_not_ok_against_a_dead_port(admin, add_webhook):
    add_webhook(url="http://127.0.0.1:9/events")
    response = admin.post("/targets/hook/test")
    assert response.status_code == 200
    assert response.json["ok"] is False
    assert "cannot connect" in response.json["error"]


def test_delivery_log_shows_a_real_delivery(admin, add_webhook, scim, pipeline):
    target = add_webhook()
    user = create_user(scim)
    pipeline.run()
    response = admin.get(f"/targets/{target['id']}/deliveries")
    assert response.status_code == 200
    [entry] = response.json
    assert (entry["kind"], entry["id"], entry["action"]) == ("user", user["id"], "create")
    assert (entry["outcome"], entry["status"]) == ("delivered", 204)
    stats = admin.get("/targets/hook").json["status"]["stats"]
    assert stats == {"delivered": 1}


def test_delivery_log_limit_is_validated(admin, add_webhook):
    add_webhook()
    assert admin.get("/targets/hook/deliveries?limit=0").status_code == 422


def test_failed_delivery_is_replayed_and_converges(admin, add_webhook, scim, pipeline, receiver):
    add_webhook()
    receiver.fail_next = 100
    user = create_user(scim)
    pipeline.run()
    failed = admin.get("/targets/hook/failed").json
    assert [(f["item"], f["reason"], f["attempts"]) for f in failed] == [
        (f"user:{user['id']}", "failed", 4)
    ]
    assert admin.get("/targets/hook").json["status"]["dead"] == 1
    receiver.fail_next = 0
    response = admin.post("/targets/hook/failed/replay", json={"items": [failed[0]["item"]]})
    assert (response.status_code, response.json) == (202, {"replayed": 1})
    pipeline.run()
    assert receiver.types() == ["user.created"]
    assert admin.get("/targets/hook/failed").json == []


def test_replay_items_must_name_a_kind_and_id(admin, add_webhook):
    add_webhook()
    response = admin.post("/targets/hook/failed/replay", json={"items": ["nonsense"]})
    assert response.status_code == 422


def guard_holds_one_deletion(admin, add_webhook, scim, pipeline) -> str:
    """Three users deleted under a guard of two: the third deletion is held."""
    add_webhook(deletion_guard={"max": 2, "window_seconds": 3600})
    users = [create_user(scim)["id"] for _ in range(3)]
    pipeline.run()
    for uid in users:
        scim.delete(f"/Users/{uid}")
    pipeline.run()
    [held] = admin.get("/targets/hook/held").json
    assert held["reason"] == "guard"
    return held["item"]


def test_held_deletion_is_sent_when_approved(admin, add_webhook, scim, pipeline, receiver):
    guard_holds_one_deletion(admin, add_webhook, scim, pipeline)
    assert receiver.types().count("user.deleted") == 2
    response = admin.post("/targets/hook/held/approve")
    assert (response.status_code, response.json) == (202, {"replayed": 1})
    pipeline.run()
    assert receiver.types().count("user.deleted") == 3
    assert admin.get("/targets/hook/held").json == []


def test_held_deletion_is_dropped_when_rejected(admin, add_webhook, scim, pipeline, receiver):
    item = guard_holds_one_deletion(admin, add_webhook, scim, pipeline)
    response = admin.post("/targets/hook/held/reject", json={"items": [item]})
    assert (response.status_code, response.json) == (200, {"discarded": 1})
    pipeline.run()
    assert receiver.types().count("user.deleted") == 2
    assert admin.get("/targets/hook/held").json == []


def test_deliveries_held_by_the_breaker_are_sent_when_approved(
    app, admin, add_webhook, scim, pipeline, receiver
):
    target = add_webhook()
    deliveries = app.extensions["bridge"].deliveries
    deliveries.record_failure(target["id"], 1)  # open the breaker
    create_user(scim)
    pipeline.run()
    assert [h["reason"] for h in admin.get("/targets/hook/held").json] == ["circuit"]
    assert admin.get("/targets/hook").json["status"]["breaker"] == "open"
    deliveries.close(target["id"])
    assert admin.post("/targets/hook/held/approve").json == {"replayed": 1}
    pipeline.run()
    assert receiver.types() == ["user.created"]


def test_sync_enqueues_and_delivers_everything(admin, add_webhook, scim, pipeline, receiver):
    users = [create_user(scim)["id"] for _ in range(3)]
    group = scim.post("/Groups", json=entra_group()).json
    pipeline.run()  # no target yet: nothing is delivered
    add_webhook()
    response = admin.post("/targets/hook/sync")
    assert (response.status_code, response.json) == (202, {"enqueued": 4})
    pipeline.run()
    created = receiver.of("user.created") + receiver.of("group.created")
    assert sorted(e["data"]["id"] for e in created) == sorted([*users, group["id"]])


def test_sync_of_a_disabled_target_is_409(admin, add_webhook):
    add_webhook(enabled=False)
    response = admin.post("/targets/hook/sync")
    assert response.status_code == 409
    assert "disabled" in response.json["message"]
