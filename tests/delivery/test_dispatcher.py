"""The dispatcher turns the change stream into delivery jobs, atomically and exactly once."""

from __future__ import annotations

from bridge.delivery.dispatcher import (
    BATCH,
    GATHER_MAX_SECONDS,
    GATHER_SECONDS,
    Dispatcher,
    gather_after,
    takes_access_away,
)
from bridge.delivery.jobs import PRIORITY_QUEUE, QUEUE
from tests.factories import entra_group, entra_user, patch


def webhook(ctx, **overrides) -> dict:
    config = {
        "name": "hook",
        "kind": "webhook",
        "url": "http://127.0.0.1:9/hook",
        "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "resources": ["users", "groups"],
        "scope": {"type": "all"},
    }
    config.update(overrides)
    return ctx.targets.create(config)


def dispatcher(ctx, name: str = "d1") -> Dispatcher:
    d = Dispatcher(
        ctx.redis, ctx.directory.changes_key, ctx.targets.all, name, ctx.jobs, ctx.deliveries
    )
    d.setup()
    return d


def jobs(ctx, queue: str) -> list[tuple]:
    """(target id, items) of each queued delivery job; a job that takes what is pending in
    its target's lane lists those items."""
    found = []
    for job in ctx.queues[queue].get_jobs():
        target_id, items = job.args[:2]
        lane = job.kwargs.get("pending")
        if lane:
            items = items + [list(i) for i in ctx.deliveries.pending_items(target_id, lane)]
        found.append((target_id, items))
    return found


def forget_jobs(ctx) -> None:
    """Drop the queued delivery jobs and what waits in the targets' lanes."""
    for name in (QUEUE, PRIORITY_QUEUE):
        ctx.queues[name].empty()
    for target in ctx.targets.all():
        ctx.deliveries.forget(target.id)


def test_each_change_becomes_a_job_for_each_target(scim, ctx):
    a, b = webhook(ctx, name="a"), webhook(ctx, name="b")
    user = scim.post("/Users", json=entra_user()).json
    assert dispatcher(ctx).drain() == 1
    assert sorted(jobs(ctx, QUEUE)) == sorted(
        [(a["id"], [["user", user["id"]]]), (b["id"], [["user", user["id"]]])]
    )


def test_dispatched_entries_are_acknowledged_and_removed(scim, ctx, redis_client):
    webhook(ctx)
    scim.post("/Users", json=entra_user())
    dispatcher(ctx).drain()
    assert redis_client.xlen("bridge:changes") == 0
    assert redis_client.xpending("bridge:changes", "dispatch")["pending"] == 0


def test_changes_to_one_resource_in_a_batch_become_one_item(scim, ctx):
    target = webhook(ctx)
    user = scim.post("/Users", json=entra_user()).json
    for title in ("a", "b", "c"):
        scim.patch(
            f"/Users/{user['id']}", json=patch({"op": "replace", "path": "title", "value": title})
        )
    dispatcher(ctx).drain()
    assert jobs(ctx, QUEUE) == [(target["id"], [["user", user["id"]]])]


def test_deprovisioning_changes_go_to_the_priority_queue(scim, ctx):
    target = webhook(ctx)
    user = scim.post("/Users", json=entra_user()).json
    dispatcher(ctx).drain()
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "replace", "path": "active", "value": "False"})
    )
    dispatcher(ctx).drain()
    assert jobs(ctx, PRIORITY_QUEUE) == [(target["id"], [["user", user["id"]]])]


def test_membership_of_a_scoping_group_re_examines_the_members(scim, ctx):
    group = scim.post("/Groups", json=entra_group()).json
    target = webhook(ctx, scope={"type": "groups", "groups": [group["id"]]}, resources=["users"])
    user = scim.post("/Users", json=entra_user()).json
    dispatcher(ctx).drain()
    forget_jobs(ctx)
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    dispatcher(ctx).drain()
    assert jobs(ctx, QUEUE) == [(target["id"], [["user", user["id"]]])]


def test_groups_outside_a_group_scope_are_not_sent(scim, ctx):
    scoped = scim.post("/Groups", json=entra_group()).json
    webhook(ctx, scope={"type": "groups", "groups": [scoped["id"]]})
    dispatcher(ctx).drain()
    forget_jobs(ctx)
    scim.post("/Groups", json=entra_group())
    dispatcher(ctx).drain()
    assert jobs(ctx, QUEUE) == []


def test_disabled_targets_get_no_jobs(scim, ctx):
    webhook(ctx, enabled=False)
    scim.post("/Users", json=entra_user())
    dispatcher(ctx).drain()
    assert jobs(ctx, QUEUE) == []


def test_entries_a_dead_dispatcher_left_pending_are_reclaimed(scim, ctx, redis_client):
    target = webhook(ctx)
    user = scim.post("/Users", json=entra_user()).json
    dead = dispatcher(ctx, "dead")
    redis_client.xreadgroup(
        "dispatch", "dead", {"bridge:changes": ">"}, count=10
    )  # read, then crash
    assert jobs(ctx, QUEUE) == []
    survivor = dispatcher(ctx, "survivor")
    assert survivor.poll(block_ms=None) == 0, "new reads do not see entries pending elsewhere"
    assert survivor.reclaim(min_idle_ms=0) == 1
    assert jobs(ctx, QUEUE) == [(target["id"], [["user", user["id"]]])]
    assert dead.reclaim(min_idle_ms=0) == 0


def test_changes_made_before_the_first_dispatcher_started_are_not_skipped(scim, ctx):
    target = webhook(ctx)
    user = scim.post("/Users", json=entra_user()).json
    assert dispatcher(ctx).drain() == 1
    assert jobs(ctx, QUEUE) == [(target["id"], [["user", user["id"]]])]


def test_members_leaving_a_group_travel_in_the_lane_served_first():
    """Members leaving a group take access away, as a disable or a delete does."""
    assert takes_access_away({"op": "updated", "removed": '["u"]'})
    assert takes_access_away({"op": "updated", "deprovision": "1"})
    assert takes_access_away({"op": "deleted"})
    assert not takes_access_away({"op": "updated", "added": '["u"]'})


def test_a_read_that_found_one_change_pauses_the_shortest_gathering():
    assert gather_after(1) == GATHER_SECONDS


def test_a_busier_read_lets_more_changes_gather_before_the_next_up_to_a_bound():
    pauses = [gather_after(n) for n in (1, 2, 3, 5, 50, BATCH - 1)]
    assert pauses == sorted(pauses)
    assert pauses[1] > pauses[0]
    assert max(pauses) == GATHER_MAX_SECONDS
