"""Group memberships as the directory keeps them: a hash of members per group, and a set of
groups per member, changed together by one write (bridge/directory/lua/write.lua)."""

from __future__ import annotations

import orjson

from bridge.directory.ids import new_id
from tests.factories import entra_group, entra_user, patch

CHUNK = 1000
"""Members the write script sends to Redis in one command."""


def add(scim, gid: str, *ids: str) -> None:
    body = patch({"op": "Add", "path": "members", "value": [{"value": i} for i in ids]})
    assert scim.patch(f"/Groups/{gid}", json=body).status_code in (200, 204)


def remove(scim, gid: str, *ids: str) -> None:
    ops = [{"op": "Remove", "path": f'members[value eq "{i}"]'} for i in ids]
    assert scim.patch(f"/Groups/{gid}", json=patch(*ops)).status_code in (200, 204)


def members(scim, gid: str) -> dict[str, str]:
    """Member id -> type, as a GET of the group answers."""
    group = scim.get(f"/Groups/{gid}").json
    return {m["value"]: m["type"] for m in group.get("members", [])}


def groups_of(redis_client, kind: str, rid: str) -> set[str]:
    return {g.decode() for g in redis_client.smembers(f"bridge:{kind}:{rid}:groups")}


def last_change(redis_client) -> dict[str, str]:
    _, fields = redis_client.xrevrange("bridge:changes", count=1)[0]
    return {k.decode(): v.decode() for k, v in fields.items()}


def test_users_and_a_nested_group_added_in_one_patch_keep_their_types(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json["id"]
    child = scim.post("/Groups", json=entra_group()).json["id"]
    parent = scim.post("/Groups", json=entra_group()).json["id"]
    add(scim, parent, user, child)
    assert members(scim, parent) == {user: "User", child: "Group"}
    assert groups_of(redis_client, "user", user) == {parent}
    assert groups_of(redis_client, "group", child) == {parent}


def test_a_removed_nested_group_leaves_the_parent_in_its_groups_no_more(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json["id"]
    child = scim.post("/Groups", json=entra_group()).json["id"]
    parent = scim.post("/Groups", json=entra_group()).json["id"]
    add(scim, parent, user, child)
    remove(scim, parent, child)
    assert members(scim, parent) == {user: "User"}
    assert groups_of(redis_client, "group", child) == set()
    assert groups_of(redis_client, "user", user) == {parent}


def test_a_member_removed_twice_in_one_patch_is_announced_once(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json["id"]
    group = scim.post("/Groups", json=entra_group()).json["id"]
    add(scim, group, user)
    remove(scim, group, user, user)
    assert orjson.loads(last_change(redis_client)["removed"]) == [user]
    assert members(scim, group) == {}


def test_adding_members_already_in_the_group_changes_nothing(scim, redis_client):
    user = scim.post("/Users", json=entra_user()).json["id"]
    group = scim.post("/Groups", json=entra_group()).json["id"]
    add(scim, group, user)
    entries = redis_client.xlen("bridge:changes")
    add(scim, group, user)
    assert redis_client.xlen("bridge:changes") == entries


def test_more_members_than_one_redis_command_takes_are_all_added_and_removed(scim, redis_client):
    users = [scim.post("/Users", json=entra_user()).json["id"] for _ in range(CHUNK + 5)]
    group = scim.post("/Groups", json=entra_group()).json["id"]
    add(scim, group, *users)
    assert set(members(scim, group)) == set(users)
    assert all(groups_of(redis_client, "user", u) == {group} for u in users)
    body = patch({"op": "Remove", "path": "members", "value": [{"value": u} for u in users[1:]]})
    assert scim.patch(f"/Groups/{group}", json=body).status_code in (200, 204)
    assert members(scim, group) == {users[0]: "User"}
    assert sorted(orjson.loads(last_change(redis_client)["removed"])) == sorted(users[1:])
    assert all(groups_of(redis_client, "user", u) == set() for u in users[1:])


def test_an_unknown_member_among_many_users_is_refused_and_nothing_is_added(scim):
    unknown = new_id()
    users = [scim.post("/Users", json=entra_user()).json["id"] for _ in range(3)]
    group = scim.post("/Groups", json=entra_group()).json["id"]
    body = patch(
        {
            "op": "Add",
            "path": "members",
            "value": [{"value": u} for u in [*users, unknown]],
        }
    )
    response = scim.patch(f"/Groups/{group}", json=body)
    assert response.status_code == 400
    assert response.json["detail"] == f"members do not exist: {unknown}"
    assert members(scim, group) == {}
