"""Relaying directory changes to a webhook target: real dispatcher, real RQ workers, and a
real receiver on 127.0.0.1 that verifies every Standard Webhooks signature."""

from __future__ import annotations

import pytest

from tests.factories import entra_group, entra_user, patch, target_config
from workers.context import context


@pytest.fixture
def add_target(app, receiver):
    store = context().targets

    def add(**overrides) -> dict:
        defaults = {
            "name": "hook",
            "url": receiver.url + "/events",
            "signing_secret": receiver.secret,
        }
        return store.create(target_config(**{**defaults, **overrides}))

    return add


def create_user(scim, **overrides) -> dict:
    response = scim.post("/Users", json=entra_user(**overrides))
    assert response.status_code == 201
    return response.json


def test_created_user_is_delivered_as_a_signed_user_created_event(
    scim, pipeline, add_target, receiver
):
    add_target()
    user = create_user(scim)
    pipeline.run()
    assert receiver.types() == ["user.created"]
    event = receiver.events[0]
    assert event["data"]["id"] == user["id"]
    assert event["data"]["resource"]["userName"] == user["userName"]
    assert receiver.rejected == 0


def test_attribute_mapping_shapes_the_payload(scim, pipeline, add_target, receiver):
    add_target(
        user_mapping={
            "login": {"lower": "userName"},
            "email": 'emails[type eq "work"].value',
            "fullName": {"join": ["name.givenName", "name.familyName"]},
            "tenant": {"const": "contoso"},
        }
    )
    user = create_user(scim, userName="Ada.Lovelace@Contoso.com")
    pipeline.run()
    assert receiver.events[0]["data"]["resource"] == {
        "login": "ada.lovelace@contoso.com",
        "email": user["emails"][0]["value"],
        "fullName": "givenName familyName",
        "tenant": "contoso",
    }


def test_update_disable_and_delete_are_relayed_in_order(scim, pipeline, add_target, receiver):
    add_target()
    user = create_user(scim)
    pipeline.run()
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "title", "value": "CTO"})
    )
    pipeline.run()
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": "False"})
    )
    pipeline.run()
    scim.delete(f"/Users/{user['id']}")
    pipeline.run()
    assert receiver.types() == ["user.created", "user.updated", "user.deactivated", "user.deleted"]


def test_changes_between_deliveries_collapse_into_the_current_state(
    scim, pipeline, add_target, receiver
):
    add_target()
    user = create_user(scim)
    for title in ("a", "b", "c"):
        scim.patch(
            f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "title", "value": title})
        )
    pipeline.run()
    assert receiver.types() == ["user.created"]
    assert receiver.events[0]["data"]["resource"]["title"] == "c"


def test_duplicate_jobs_are_no_ops(scim, pipeline, add_target, receiver):
    target = add_target()
    user = create_user(scim)
    pipeline.run()
    queue = context().queues["bridge"]
    for _ in range(3):
        queue.enqueue("workers.deliver.deliver", target["id"], [["user", user["id"]]])
    pipeline.run()
    assert receiver.types() == ["user.created"]


def test_stale_job_after_delete_does_not_resurrect(scim, pipeline, add_target, receiver):
    target = add_target()
    user = create_user(scim)
    pipeline.run()
    scim.delete(f"/Users/{user['id']}")
    pipeline.run()
    context().queues["bridge"].enqueue(
        "workers.deliver.deliver", target["id"], [["user", user["id"]]]
    )
    pipeline.run()
    assert receiver.types() == ["user.created", "user.deleted"]


def test_disabled_user_is_deleted_when_target_deprovisions_by_delete(
    scim, pipeline, add_target, receiver
):
    add_target(deprovision="delete")
    user = create_user(scim)
    pipeline.run()
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": False})
    )
    pipeline.run()
    assert receiver.types() == ["user.created", "user.deleted"]


def test_disabled_user_never_provisioned_is_not_sent(scim, pipeline, add_target, receiver):
    add_target()
    create_user(scim, active=False)
    pipeline.run()
    assert receiver.types() == []


def test_joining_a_scoping_group_provisions_and_leaving_deprovisions(
    scim, pipeline, add_target, receiver
):
    group = scim.post("/Groups", json=entra_group()).json
    add_target(scope={"type": "groups", "groups": [group["id"]]}, resources=["users"])
    user = create_user(scim)
    pipeline.run()
    assert receiver.types() == []
    add = patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]})
    scim.patch(f"/Groups/{group['id']}", json=add)
    pipeline.run()
    assert receiver.types() == ["user.created"]
    remove = patch({"op": "Remove", "path": f'members[value eq "{user["id"]}"]'})
    scim.patch(f"/Groups/{group['id']}", json=remove)
    pipeline.run()
    assert receiver.types() == ["user.created", "user.deactivated"]


def test_group_members_are_sent_after_the_users_exist(scim, pipeline, add_target, receiver):
    add_target()
    group = scim.post("/Groups", json=entra_group()).json
    pipeline.run()
    users = [create_user(scim)["id"] for _ in range(3)]
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": u} for u in users]}),
    )
    pipeline.run()
    types = receiver.types()
    assert types[0] == "group.created"
    assert types.index("group.members_added") > max(
        i for i, t in enumerate(types) if t == "user.created"
    )
    added = receiver.of("group.members_added")
    assert sorted(m["id"] for e in added for m in e["data"]["members"]) == sorted(users)


def test_removed_member_is_relayed(scim, pipeline, add_target, receiver):
    add_target()
    user = create_user(scim)
    group = scim.post("/Groups", json=entra_group(members=[{"value": user["id"]}])).json
    pipeline.run()
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Remove", "path": "members", "value": [{"value": user["id"]}]}),
    )
    pipeline.run()
    assert receiver.of("group.members_removed")[0]["data"]["members"] == [{"id": user["id"]}]


def test_target_failing_then_recovering_converges(scim, pipeline, add_target, receiver):
    target = add_target()
    receiver.fail_next = 2
    user = create_user(scim)
    pipeline.run()
    assert receiver.types() == ["user.created"]
    assert len(set(receiver.attempt_ids)) == 1, "the idempotency key stays the same across retries"
    log = context().deliveries.log(target["id"])
    assert [e["outcome"] for e in reversed(log)] == ["failed", "failed", "delivered"]
    assert receiver.events[0]["data"]["id"] == user["id"]


def test_target_down_past_all_retries_is_dead_lettered_then_replayed(
    scim, pipeline, add_target, receiver
):
    target = add_target()
    receiver.fail_next = 100
    user = create_user(scim)
    pipeline.run()
    dead = context().deliveries.parked(target["id"], "dead")
    assert [(d["kind"], d["id"], d["attempts"]) for d in dead] == [("user", user["id"], 4)]
    receiver.fail_next = 0
    assert context().jobs.replay(context().deliveries, target["id"], "dead") == 1
    pipeline.run()
    assert receiver.types() == ["user.created"]
    assert context().deliveries.parked(target["id"], "dead") == []


def test_client_error_is_dead_lettered_at_once(scim, pipeline, add_target, receiver):
    target = add_target()
    receiver.fail_next, receiver.fail_status = 100, 400
    create_user(scim)
    pipeline.run()
    assert [d["attempts"] for d in context().deliveries.parked(target["id"], "dead")] == [1]


def test_shadow_mode_logs_what_it_would_send_and_sends_nothing(
    scim, pipeline, add_target, receiver
):
    target = add_target(shadow=True)
    user = create_user(scim)
    pipeline.run()
    assert receiver.types() == []
    entry = context().deliveries.log(target["id"])[0]
    assert (entry["outcome"], entry["action"]) == ("shadow", "create")
    assert entry["payload"]["userName"] == user["userName"]


def test_deletion_guard_holds_deprovisions_over_the_limit_until_approved(
    scim, pipeline, add_target, receiver
):
    target = add_target(deletion_guard={"max": 2, "window_seconds": 3600})
    users = [create_user(scim)["id"] for _ in range(3)]
    pipeline.run()
    for uid in users:
        scim.delete(f"/Users/{uid}")
    pipeline.run()
    assert receiver.types().count("user.deleted") == 2
    held = context().deliveries.parked(target["id"], "held")
    assert [(h["reason"], h["kind"]) for h in held] == [("guard", "user")]
    ctx = context()
    assert (
        ctx.jobs.replay(
            ctx.deliveries,
            target["id"],
            "held",
            reason="guard",
            bypass_guard=True,
        )
        == 1
    )
    pipeline.run()
    assert receiver.types().count("user.deleted") == 3


def test_failing_target_is_quarantined_and_resumes_when_it_answers(
    scim, pipeline, add_target, receiver
):
    from workers.deliver import probe

    target = add_target()
    deliveries = context().deliveries
    for _ in range(1000):  # the breaker threshold in tests is 1000: open it by hand
        if deliveries.record_failure(target["id"], 3):
            break
    create_user(scim)
    pipeline.run()
    assert receiver.types() == []
    assert [h["reason"] for h in deliveries.parked(target["id"], "held")] == ["circuit"]
    assert probe(target["id"]) == "resumed"
    pipeline.run()
    assert receiver.types() == ["user.created"]
    assert not deliveries.is_open(target["id"])


def test_a_success_clears_the_failures_counted_before_it(scim, pipeline, add_target, receiver):
    target = add_target()
    deliveries = context().deliveries
    deliveries.record_failure(target["id"], 1000)
    create_user(scim)
    pipeline.run()
    assert receiver.types() == ["user.created"]
    assert deliveries.status(target["id"])["failures"] == 0


def test_a_success_on_a_target_that_never_failed_writes_no_breaker(
    scim, pipeline, add_target, receiver, redis_client
):
    target = add_target()
    create_user(scim)
    pipeline.run()
    assert receiver.types() == ["user.created"]
    assert not redis_client.exists(context().deliveries.key(target["id"], "breaker"))
    assert context().deliveries.status(target["id"])["breaker"] == "closed"


def test_a_slow_or_dead_target_does_not_delay_the_others(scim, pipeline, add_target, receiver):
    add_target(name="dead", url="http://127.0.0.1:9/events")
    add_target(name="alive")
    create_user(scim)
    pipeline.run()
    assert receiver.types() == ["user.created"]


def test_disabled_target_receives_nothing(scim, pipeline, add_target, receiver):
    add_target(enabled=False)
    create_user(scim)
    pipeline.run()
    assert receiver.types() == []


def test_re_enabled_member_of_a_scoping_group_is_announced_as_added_to_it(
    scim, pipeline, add_target, receiver
):
    group = scim.post("/Groups", json=entra_group()).json
    user = create_user(scim, active=False)
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    pipeline.run()  # no target yet
    target = add_target(scope={"type": "groups", "groups": [group["id"]]})
    context().jobs.sync_target(context().directory, target["id"])
    pipeline.run()
    assert receiver.types() == ["group.created"]
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": "True"})
    )
    pipeline.run()
    assert receiver.types()[1:] == ["user.created", "group.members_added"]
    assert receiver.of("group.members_added")[0]["data"]["members"] == [{"id": user["id"]}]


def test_a_target_that_is_down_costs_one_attempt_per_batch_not_one_per_item(
    scim, add_target, receiver
):
    """After a retryable failure the rest of the batch waits with the failed item, instead
    of each spending a timeout on a target that is down."""
    ctx = context()
    target = ctx.targets.get(add_target()["id"])
    users = [create_user(scim)["id"] for _ in range(5)]
    receiver.fail_next = 100
    outcome = ctx.relay.deliver(
        target, ctx.connector(target), [("user", u) for u in users], token="job"
    )
    assert len(receiver.attempt_ids) == 1
    assert list(outcome.results.values()) == ["retry"] + ["deferred"] * 4
    assert {again.id for again in outcome.retries} == set(users)
    assert outcome.settled == []


def test_a_lock_left_by_the_same_job_is_taken_over(app):
    ctx = context()
    deliveries = ctx.deliveries
    first = deliveries.snapshot("t", "user", "u1", "job-1", ctx.directory)
    again = deliveries.snapshot("t", "user", "u1", "job-1", ctx.directory)
    other = deliveries.snapshot("t", "user", "u1", "job-2", ctx.directory)
    assert (first.locked, again.locked, other.locked) == (True, True, False)


def test_the_same_content_sent_again_later_gets_a_new_webhook_id(
    scim, pipeline, add_target, receiver
):
    """webhook-id stays the same across retries of one delivery, but a later delivery of
    the same content (enabled again after a disable) is a new message: receivers that
    de-duplicate on webhook-id must not drop it."""
    add_target()
    user = create_user(scim)
    pipeline.run()
    for value in ("False", "True", "False", "True"):
        scim.patch(
            f"/Users/{user['id']}",
            json=patch({"op": "Replace", "path": "active", "value": value}),
        )
        pipeline.run()
    assert receiver.types() == [
        "user.created", "user.deactivated", "user.updated", "user.deactivated", "user.updated",
    ]  # fmt: skip
    assert len(set(receiver.ids)) == 5


def test_what_a_delivery_may_give_is_recorded_before_it_is_sent(scim, add_target, receiver):
    """A worker that dies after the target acted but before the bridge saved it must not
    leave an account the bridge does not know of: the grant is recorded first."""
    ctx = context()
    target = ctx.targets.get(add_target()["id"])
    user = create_user(scim)
    receiver.fail_next = 1  # the target answers 500 after the bridge recorded the intent
    ctx.relay.deliver(target, ctx.connector(target), [("user", user["id"])], token="job")
    state = ctx.deliveries.states(target.id, "user", [user["id"]])[user["id"]]
    assert state.get("present") is None
    assert state["maybe"]["present"] is True
    assert state["maybe"]["match"]["userName"] == user["userName"]


def test_the_state_a_delivery_saves_names_the_payload_it_sent(scim, add_target, receiver):
    """The saved digest is the sent payload's: the next delivery of the same content
    finds nothing to do, and one of new content sends it."""
    from bridge.delivery.planning import digest

    ctx = context()
    target = ctx.targets.get(add_target()["id"])
    user = create_user(scim)
    items = [("user", user["id"])]
    ctx.relay.deliver(target, ctx.connector(target), items, token="job")
    state = ctx.deliveries.states(target.id, "user", [user["id"]])[user["id"]]
    assert state["digest"] == digest(receiver.events[-1]["data"]["resource"])
    again = ctx.relay.deliver(target, ctx.connector(target), items, token="job")
    assert list(again.results.values()) == ["noop"]
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "displayName", "value": "B"})
    )
    changed = ctx.relay.deliver(target, ctx.connector(target), items, token="job")
    assert list(changed.results.values()) == ["delivered"]
    state = ctx.deliveries.states(target.id, "user", [user["id"]])[user["id"]]
    assert state["digest"] == digest(receiver.events[-1]["data"]["resource"])
    assert receiver.types() == ["user.created", "user.updated"]
