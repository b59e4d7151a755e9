"""Closing a batch's deliveries: what closes an item (its state, log entry, counters and
lock) goes to Redis with the next item's snapshot, and whatever is left when the batch
ends goes before the delivery returns. Real Redis, a real webhook receiver."""

from __future__ import annotations

import pytest
import redis

from workers.deliver import deliver


def items(ids: list[str]) -> list[list[str]]:
    return [["user", rid] for rid in ids]


def locked(ctx, target_id: str, ids: list[str]) -> list[str]:
    """The users whose delivery lock at the target is still held."""
    keys = {rid: ctx.deliveries.key(target_id, f"lock:user:{rid}") for rid in ids}
    return [rid for rid, key in keys.items() if ctx.redis.exists(key)]


def logged(ctx, target_id: str) -> list[tuple[str, str]]:
    return sorted((e["id"], e["outcome"]) for e in ctx.deliveries.log(target_id))


def test_every_item_of_a_batch_is_closed_when_its_delivery_returns(ctx, target_id, users, receiver):
    deliver(target_id, items(users))
    assert sorted(e["data"]["id"] for e in receiver.events) == sorted(users)
    assert logged(ctx, target_id) == sorted((rid, "delivered") for rid in users)
    assert set(ctx.deliveries.states(target_id, "user", users)) == set(users)
    assert locked(ctx, target_id, users) == []
    assert ctx.deliveries.stats(target_id)["delivered"] == 3


def test_items_found_in_line_release_their_locks_with_the_batch(ctx, target_id, users, receiver):
    deliver(target_id, items(users))
    deliver(target_id, items(users))
    assert len(receiver.events) == 3
    assert locked(ctx, target_id, users) == []


def test_a_batch_closes_its_items_after_redis_lost_its_scripts(ctx, target_id, users, receiver):
    # as after a restart of Redis: the closings of the first item reach a Redis that no
    # longer knows the script they run
    receiver.on_event = lambda event: ctx.redis.script_flush()
    deliver(target_id, items(users))
    assert len(receiver.events) == 3
    assert receiver.attempt_ids == list(dict.fromkeys(receiver.attempt_ids))  # none twice
    assert logged(ctx, target_id) == sorted((rid, "delivered") for rid in users)
    assert locked(ctx, target_id, users) == []


def test_a_lone_item_is_read_after_redis_lost_its_scripts(ctx, target_id, users, receiver):
    # the snapshot is a script too: a Redis that no longer knows it (restarted, or emptied)
    # refuses it, and it goes again once loaded
    ctx.redis.script_flush()
    assert deliver(target_id, items(users[:1])) == {f"user:{users[0]}": "delivered"}
    assert [e["data"]["id"] for e in receiver.events] == users[:1]
    assert logged(ctx, target_id) == [(users[0], "delivered")]
    assert locked(ctx, target_id, users) == []


def test_a_lone_item_is_closed_once_after_redis_lost_its_scripts(ctx, target_id, users, receiver):
    # its closing, sent alone when the delivery ends, reaches a Redis that lost its script
    receiver.on_event = lambda event: ctx.redis.script_flush()
    assert deliver(target_id, items(users[:1])) == {f"user:{users[0]}": "delivered"}
    assert logged(ctx, target_id) == [(users[0], "delivered")]
    assert ctx.deliveries.stats(target_id)["delivered"] == 1
    assert locked(ctx, target_id, users) == []


def test_a_success_is_closed_before_the_next_items_failure_is_counted(
    ctx, target_id, users, receiver
):
    def fail_the_next(event: dict) -> None:
        receiver.fail_next = 1
        receiver.on_event = None

    receiver.on_event = fail_the_next
    result = deliver(target_id, items(users))
    assert sorted(result.values()) == ["deferred", "delivered", "retry"]
    # the success reset the breaker's count before the failure added to it, not after
    assert ctx.deliveries.breaker(target_id)["failures"] == "1"
    assert locked(ctx, target_id, users) == []
    assert sorted(o for _id, o in logged(ctx, target_id)) == ["delivered", "failed"]


def test_a_closing_that_ran_is_not_sent_again_when_the_rest_of_its_round_trip_fails(
    ctx, target_id, users, receiver
):
    # the second user's snapshot fails in Redis (its groups key is not a set) after the
    # first user's closing, in the same pipeline, has run
    groups_key = ctx.directory.key("user", users[1]) + ":groups"
    ctx.redis.delete(groups_key)
    ctx.redis.set(groups_key, "not a set")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        deliver(target_id, items(users[:2]))
    assert logged(ctx, target_id) == [(users[0], "delivered")]
    assert ctx.deliveries.stats(target_id)["delivered"] == 1
    assert locked(ctx, target_id, users[:1]) == []
