"""The Targets pages and their buttons, against the real pipeline and a live receiver."""

from __future__ import annotations


def test_targets_list_shows_each_target_with_its_health(console, add_webhook):
    add_webhook()
    add_webhook(name="quiet", enabled=False)
    page = console.get("/targets").text
    assert "hook" in page and "quiet" in page
    assert "badge-healthy" in page and "badge-disabled" in page


def test_target_page_shows_settings_but_never_secrets(console, add_webhook, receiver):
    add_webhook(auth={"type": "bearer", "token": "s3cr3t-bearer"})
    page = console.get("/targets/hook").text
    assert receiver.url in page
    assert "s3cr3t-bearer" not in page
    assert receiver.secret not in page


def test_an_unknown_target_is_a_404_page(console):
    response = console.get("/targets/nowhere")
    assert response.status_code == 404
    assert "nowhere" in response.text


def test_delivery_log_lists_a_real_delivery(console, add_webhook, create_user, pipeline):
    add_webhook()
    user = create_user()
    pipeline.run()
    page = console.get("/targets/hook").text
    assert f"user:{user['id']}" in page
    assert "badge-delivered" in page


def test_replaying_one_dead_letter_delivers_it(
    console, add_webhook, create_user, pipeline, receiver
):
    add_webhook()
    receiver.fail_next, receiver.fail_status = 1, 400
    user = create_user()
    pipeline.run()
    assert "Dead letters (1)" in console.get("/targets/hook").text
    response = console.post("/targets/hook/failed/replay", {"item": f"user:{user['id']}"})
    assert response.status_code == 302
    pipeline.run()
    page = console.get("/targets/hook").text
    assert "Replaying 1 dead letters." in page
    assert "Dead letters (0)" in page
    assert receiver.types() == ["user.created"]


def test_replay_all_replays_every_dead_letter(
    console, add_webhook, create_user, pipeline, receiver
):
    add_webhook()
    receiver.fail_next, receiver.fail_status = 2, 400
    create_user()
    create_user()
    pipeline.run()
    console.post("/targets/hook/failed/replay")
    pipeline.run()
    assert receiver.types() == ["user.created", "user.created"]


def guarded(add_webhook, create_user, scim, pipeline) -> None:
    """Two users disabled under a guard of one: the second deprovision is held."""
    add_webhook(deletion_guard={"max": 1, "window_seconds": 3600})
    users = [create_user()["id"] for _ in range(2)]
    pipeline.run()
    for uid in users:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}]}  # fmt: skip
        assert scim.patch(f"/Users/{uid}", json=body).status_code == 200
    pipeline.run()


def test_approving_a_held_deprovision_sends_it(
    console, add_webhook, create_user, scim, pipeline, receiver
):
    guarded(add_webhook, create_user, scim, pipeline)
    page = console.get("/targets/hook").text
    assert "Held deliveries (1)" in page and "badge-guard" in page
    console.post("/targets/hook/held/approve")
    pipeline.run()
    assert receiver.types().count("user.deactivated") == 2
    assert "Held deliveries (0)" in console.get("/targets/hook").text


def test_rejecting_a_held_deprovision_drops_it(
    console, admin, add_webhook, create_user, scim, pipeline, receiver
):
    guarded(add_webhook, create_user, scim, pipeline)
    [held] = admin.get("/targets/hook/held").json
    console.post("/targets/hook/held/reject", {"item": held["item"]})
    pipeline.run()
    assert receiver.types().count("user.deactivated") == 1
    assert "Dropped 1 held deliveries." in console.get("/targets/hook").text


def test_test_connection_reports_the_answer(console, add_webhook, receiver):
    add_webhook()
    console.post("/targets/hook/test")
    assert "The target answered (HTTP 204)." in console.get("/targets/hook").text
    assert [e["type"] for e in receiver.events] == ["bridge.ping"]


def test_test_connection_reports_a_failure(console, add_webhook):
    add_webhook(url="http://127.0.0.1:9/events")
    console.post("/targets/hook/test")
    page = console.get("/targets/hook").text
    assert "notice-error" in page and "did not answer well" in page


def test_sync_now_queues_every_resource(console, add_webhook, create_user, pipeline, receiver):
    add_webhook()
    create_user()
    pipeline.run()
    console.post("/targets/hook/sync")
    assert "Queued 1 resources." in console.get("/targets/hook").text


def test_disable_and_enable(console, app, add_webhook):
    add_webhook()
    console.post("/targets/hook/enabled", {"enabled": "0"})
    assert app.extensions["bridge"].targets.configs()[0]["enabled"] is False
    assert "badge-disabled" in console.get("/targets/hook").text
    console.post("/targets/hook/enabled", {"enabled": "1"})
    assert app.extensions["bridge"].targets.configs()[0]["enabled"] is True


def test_sync_of_a_disabled_target_says_why_not(console, add_webhook):
    add_webhook(enabled=False)
    console.post("/targets/hook/sync")
    assert "enable it before syncing" in console.get("/targets/hook").text


def test_shadow_output_shows_what_would_have_been_sent(
    console, add_webhook, create_user, pipeline, receiver
):
    add_webhook(shadow=True)
    user = create_user()
    pipeline.run()
    page = console.get("/targets/hook").text
    assert 'id="shadow"' in page
    assert user["userName"] in page  # the mapped payload
    assert receiver.types() == []
