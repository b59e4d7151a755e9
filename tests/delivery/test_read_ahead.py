"""Reading ahead in a batch: a delivery that records what it may give before it sends
reads the batch's next item (its lock, state, record) in that round trip, and the next
item delivers from what was read. Real Redis, a real webhook receiver."""

from __future__ import annotations

import pytest
import redis

from tests.factories import entra_group, patch
from workers.deliver import deliver


def group_of(scim, members: list[str]) -> str:
    body = entra_group(members=[{"value": m} for m in members])
    response = scim.post("/Groups", json=body)
    assert response.status_code == 201
    return str(response.json["id"])


def locked(ctx, target_id: str, kind: str, ids: list[str]) -> list[str]:
    """The items whose delivery lock at the target is held."""
    keys = {rid: ctx.deliveries.key(target_id, f"lock:{kind}:{rid}") for rid in ids}
    return [rid for rid, key in keys.items() if ctx.redis.exists(key)]


def test_the_next_item_is_locked_and_read_before_the_current_one_is_sent(
    ctx, target_id, users, receiver
):
    held_while_sent: list[list[str]] = []
    receiver.on_event = lambda event: held_while_sent.append(locked(ctx, target_id, "user", users))
    result = deliver(target_id, [["user", rid] for rid in users])
    assert list(result.values()) == ["delivered"] * 3
    assert [e["data"]["id"] for e in receiver.events] == users
    assert held_while_sent == [users[:2], users[1:], users[2:]]
    assert locked(ctx, target_id, "user", users) == []


def test_an_item_named_twice_in_a_batch_is_delivered_once(ctx, target_id, users, receiver):
    twice = [["user", users[0]], ["user", users[0]], ["user", users[1]]]
    result = deliver(target_id, twice)
    assert result == {f"user:{users[0]}": "delivered", f"user:{users[1]}": "delivered"}
    assert receiver.types() == ["user.created", "user.created"]
    assert locked(ctx, target_id, "user", users) == []


def test_a_group_read_ahead_sees_the_member_delivered_just_before_it(
    ctx, scim, target_id, users, receiver
):
    group = group_of(scim, users[:1])
    deliver(target_id, [["user", users[0]], ["group", group]])
    added = receiver.of("group.members_added")
    assert [m["id"] for e in added for m in e["data"]["members"]] == users[:1]
    # nothing left to do: the group was delivered with the member's final state
    assert deliver(target_id, [["group", group]]) == {f"group:{group}": "noop"}


def test_an_item_deferred_after_a_failure_lets_go_of_the_lock_read_ahead(
    ctx, target_id, users, receiver
):
    receiver.fail_next = 1  # the first user fails after it read the second ahead
    result = deliver(target_id, [["user", rid] for rid in users[:2]])
    assert list(result.values()) == ["retry", "deferred"]
    assert locked(ctx, target_id, "user", users) == []


def test_a_success_is_closed_before_the_failure_of_the_item_read_ahead_is_counted(
    ctx, scim, target_id, users, receiver
):
    deliver(target_id, [["user", users[1]]])
    rename = patch({"op": "Replace", "path": "displayName", "value": "Renamed"})
    assert scim.patch(f"/Users/{users[1]}", json=rename).status_code == 200

    def fail_the_next(event: dict) -> None:
        receiver.fail_next = 1
        receiver.on_event = None

    # the new user reads the renamed one ahead; the update records no intent, so the
    # new user's closing is still held when the update fails
    receiver.on_event = fail_the_next
    result = deliver(target_id, [["user", users[0]], ["user", users[1]]])
    assert list(result.values()) == ["delivered", "retry"]
    assert ctx.deliveries.breaker(target_id)["failures"] == "1"
    assert locked(ctx, target_id, "user", users) == []


def test_a_batch_that_fails_lets_go_of_the_item_it_read_ahead(
    ctx, scim, target_id, users, receiver
):
    # the first user's delivery fails in Redis after it was sent (the target's states are
    # no longer a hash when its groups are looked at), with the second user read ahead
    group_of(scim, users[:1])
    state_key = ctx.deliveries.key(target_id, "state")

    def break_the_states(event: dict) -> None:
        receiver.on_event = None
        ctx.redis.delete(state_key)
        ctx.redis.set(state_key, "not a hash")

    receiver.on_event = break_the_states
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        deliver(target_id, [["user", rid] for rid in users[:2]])
    assert locked(ctx, target_id, "user", users[1:]) == []
