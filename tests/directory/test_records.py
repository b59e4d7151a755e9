"""The directory announces every change on the change stream, in the write that stores it."""

from __future__ import annotations

import orjson

from tests.factories import entra_group, entra_user, patch


def stream(redis_client) -> list[dict]:
    """The stream's entries, without the request id (tests/observability checks it)."""
    return [
        {k.decode(): v.decode() for k, v in fields.items() if k != b"req"}
        for _, fields in redis_client.xrange("bridge:changes")
    ]


def test_create_announces_created_with_version(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json
    assert stream(redis_client) == [{"kind": "user", "id": user["id"], "op": "created", "v": "1"}]


def test_patch_that_changes_nothing_announces_nothing(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "replace", "path": "active", "value": True})
    )
    assert len(stream(redis_client)) == 1


def test_disable_is_announced_as_a_deprovision(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "replace", "path": "active", "value": "False"})
    )
    assert stream(redis_client)[-1] == {
        "kind": "user",
        "id": user["id"],
        "op": "updated",
        "v": "2",
        "deprovision": "1",
    }


def test_member_changes_are_announced_with_the_ids(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json
    group = scim.post("/Groups", json=entra_group()).json
    add = patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]})
    scim.patch(f"/Groups/{group['id']}", json=add)
    assert orjson.loads(stream(redis_client)[-1]["added"]) == [user["id"]]
    remove = patch({"op": "Remove", "path": "members", "value": [{"value": user["id"]}]})
    scim.patch(f"/Groups/{group['id']}", json=remove)
    last = stream(redis_client)[-1]
    assert orjson.loads(last["removed"]) == [user["id"]]
    assert last["deprovision"] == "1"


def test_deleting_a_group_announces_the_members_it_released(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json
    group = scim.post("/Groups", json=entra_group(members=[{"value": user["id"]}])).json
    scim.delete(f"/Groups/{group['id']}")
    last = stream(redis_client)[-1]
    assert (last["kind"], last["op"], orjson.loads(last["removed"])) == (
        "group",
        "deleted",
        [user["id"]],
    )


def test_deleting_a_user_announces_the_groups_it_left(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json
    group = scim.post("/Groups", json=entra_group(members=[{"value": user["id"]}])).json
    scim.delete(f"/Users/{user['id']}")
    entries = stream(redis_client)[-2:]
    assert entries[0]["kind"] == "group" and entries[0]["id"] == group["id"]
    assert orjson.loads(entries[0]["removed"]) == [user["id"]]
    assert entries[1] == {"kind": "user", "id": user["id"], "op": "deleted", "v": "2"}


def test_failed_write_announces_nothing(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json
    scim.post("/Users", json=entra_user(userName=user["userName"]))
    assert len(stream(redis_client)) == 1


def test_ids_increase_in_creation_order():
    """RFC 9562 UUIDv7 with a counter: many ids in one millisecond still sort in order."""
    from bridge.directory.ids import new_id

    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i[14] == "7" for i in ids)
