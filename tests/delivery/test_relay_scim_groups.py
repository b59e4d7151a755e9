"""Relaying groups and their members to a SCIM 2.0 target (real dispatcher and workers, the
bridge's own SCIM endpoint as the target): members by the target's ids, recreated groups,
and membership that converges whatever is delivered first."""

from __future__ import annotations

from tests.delivery.downstream import create_user, remote_id, sorted_refs
from tests.factories import entra_group, patch
from workers.context import context


# --- groups -------------------------------------------------------------------------------
def test_group_members_are_translated_to_the_targets_ids(scim, pipeline, add_target, downstream):
    target = add_target()
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    copy = downstream.group(group["displayName"])
    remote_users = {downstream.user(u["userName"])["id"] for u in users}
    assert {m["value"] for m in copy["members"]} == remote_users
    assert remote_id(target, "group", group["id"]) == copy["id"]
    post = next(w for w in downstream.recorder.writes() if w.path.endswith("/Groups"))
    assert "members" not in post.body
    add = downstream.recorder.writes()[-1]
    assert add.body["Operations"] == [
        {
            "op": "add",
            "path": "members",
            "value": [{"value": m} for m in sorted_refs(target, users)],
        }
    ]


def test_group_deleted_on_the_target_is_created_again_with_all_its_members(
    scim, pipeline, add_target, downstream
):
    target = add_target()
    users = [create_user(scim) for _ in range(3)]
    group = scim.post(
        "/Groups", json=entra_group(members=[{"value": u["id"]} for u in users[:2]])
    ).json
    pipeline.run()
    old = remote_id(target, "group", group["id"])
    assert downstream.scim.delete(f"/Groups/{old}").status_code == 204
    add = patch({"op": "Add", "path": "members", "value": [{"value": users[2]["id"]}]})
    scim.patch(f"/Groups/{group['id']}", json=add)
    pipeline.run()
    copy = downstream.group(group["displayName"])
    assert copy["id"] != old
    assert {m["value"] for m in copy["members"]} == {
        downstream.user(u["userName"])["id"] for u in users
    }


def test_removed_member_is_removed_on_the_target(scim, pipeline, add_target, downstream):
    target = add_target()
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    downstream.recorder.clear()
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Remove", "path": "members", "value": [{"value": users[0]["id"]}]}),
    )
    pipeline.run()
    gone = remote_id(target, "user", users[0]["id"])
    (write,) = downstream.recorder.writes()
    assert write.body["Operations"] == [{"op": "remove", "path": f'members[value eq "{gone}"]'}]
    members = downstream.group(group["displayName"])["members"]
    assert [m["value"] for m in members] == [remote_id(target, "user", users[1]["id"])]


def test_renamed_group_is_patched_and_deleted_group_is_deleted(
    scim, pipeline, add_target, downstream
):
    add_target()
    group = scim.post("/Groups", json=entra_group()).json
    pipeline.run()
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Replace", "path": "displayName", "value": "Renamed"}),
    )
    pipeline.run()
    assert downstream.group("Renamed") is not None
    scim.delete(f"/Groups/{group['id']}")
    pipeline.run()
    assert downstream.group("Renamed") is None


def test_joining_a_scoping_group_provisions_and_leaving_deactivates(
    scim, pipeline, add_target, downstream
):
    group = scim.post("/Groups", json=entra_group()).json
    add_target(scope={"type": "groups", "groups": [group["id"]]}, resources=["users"])
    user = create_user(scim)
    pipeline.run()
    assert downstream.users() == []
    add = patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]})
    scim.patch(f"/Groups/{group['id']}", json=add)
    pipeline.run()
    assert downstream.user(user["userName"])["active"] is True
    remove = patch({"op": "Remove", "path": f'members[value eq "{user["id"]}"]'})
    scim.patch(f"/Groups/{group['id']}", json=remove)
    pipeline.run()
    assert downstream.user(user["userName"])["active"] is False


def test_deleted_member_is_not_removed_by_our_id(scim, pipeline, add_target, downstream):
    add_target()
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    scim.delete(f"/Users/{users[0]['id']}")
    pipeline.run()
    assert len(downstream.group(group["displayName"])["members"]) == 1
    paths = [
        op.get("path", "")
        for w in downstream.recorder.writes()
        if w.body
        for op in w.body.get("Operations", [])
    ]
    assert not any(users[0]["id"] in p for p in paths)


def test_first_contact_adopts_an_existing_group_by_display_name(
    scim, pipeline, add_target, downstream
):
    existing = downstream.scim.post("/Groups", json=entra_group()).json
    target = add_target()
    user = create_user(scim)
    group = scim.post(
        "/Groups",
        json=entra_group(displayName=existing["displayName"], members=[{"value": user["id"]}]),
    ).json
    pipeline.run()
    groups = downstream.scim.get("/Groups").json["Resources"]
    assert [g["id"] for g in groups] == [existing["id"]]
    assert remote_id(target, "group", group["id"]) == existing["id"]
    members = downstream.group(existing["displayName"])["members"]
    assert [m["value"] for m in members] == [remote_id(target, "user", user["id"])]


# --- membership whatever runs first -------------------------------------------------------
def test_deleted_member_is_removed_from_the_group_by_the_id_it_was_added_with(
    scim, pipeline, add_target, downstream
):
    """The user's delete runs first (it takes access away) and forgets the target's id for
    the user; the group still names that member by the id it was added with."""
    target = add_target(deprovision="delete")
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    gone = remote_id(target, "user", users[0]["id"])
    downstream.recorder.clear()
    scim.delete(f"/Users/{users[0]['id']}")
    pipeline.run()
    removals = [
        op["path"]
        for w in downstream.recorder.writes()
        if w.method == "PATCH"
        for op in w.body["Operations"]
        if op["op"] == "remove"
    ]
    assert removals == [f'members[value eq "{gone}"]']
    state = context().deliveries.states(target["id"], "group", [group["id"]])[group["id"]]
    assert list(state["members"]) == [users[1]["id"]]


def test_member_the_target_already_dropped_counts_as_removed(
    scim, pipeline, add_target, downstream
):
    """RFC 7644 §3.12: a remove whose filter matches nothing is ``noTarget``; the member is
    where it should be, so the delivery succeeds."""
    add_target()
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    copy = downstream.group(group["displayName"])
    downstream.scim.patch(
        f"/Groups/{copy['id']}",
        json=patch({"op": "replace", "path": "members", "value": []}),
    )
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Remove", "path": "members", "value": [{"value": users[0]["id"]}]}),
    )
    downstream.recorder.strict_removals = True
    pipeline.run()
    log = context().deliveries.log(context().targets.all()[0].id)
    assert log[0]["outcome"] == "delivered"


def test_re_enabled_user_gets_back_the_groups_they_are_in(scim, pipeline, add_target, downstream):
    """A group-scoped target added while a member was disabled: when the user is enabled,
    the target gets the user and then the user's membership of the group."""
    group = scim.post("/Groups", json=entra_group()).json
    user = create_user(scim, active=False)
    scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "Add", "path": "members", "value": [{"value": user["id"]}]}),
    )
    pipeline.run()  # no target yet: the changes go nowhere
    target = add_target(scope={"type": "groups", "groups": [group["id"]]})
    context().jobs.sync_target(context().directory, target["id"])
    pipeline.run()
    assert downstream.user(user["userName"]) is None
    assert downstream.group(group["displayName"])["members"] == []
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": "True"})
    )
    pipeline.run()
    copy = downstream.user(user["userName"])
    assert [m["value"] for m in downstream.group(group["displayName"])["members"]] == [copy["id"]]


def test_group_created_before_its_members_gets_them_once_they_are_delivered(
    scim, pipeline, add_target, downstream
):
    """Planning a group delivers no users: the group is written with the members the
    target holds, and each member delivered later asks for the group again."""
    users = [create_user(scim) for _ in range(3)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()  # no target yet: the changes go nowhere
    target = add_target()
    ctx = context()
    ctx.jobs.deliver(target["id"], [["group", group["id"]]])
    pipeline.run()
    assert downstream.group(group["displayName"])["members"] == []
    assert downstream.users() == []
    ctx.jobs.deliver(target["id"], [["user", u["id"]] for u in users])
    pipeline.run()
    members = {m["value"] for m in downstream.group(group["displayName"])["members"]}
    assert members == {downstream.user(u["userName"])["id"] for u in users}


def test_disable_and_remove_from_groups_takes_the_user_out_and_enabling_puts_them_back(
    scim, pipeline, add_target, downstream
):
    add_target(deprovision="disable_and_remove_from_groups")
    users = [create_user(scim) for _ in range(2)]
    group = scim.post("/Groups", json=entra_group(members=[{"value": u["id"]} for u in users])).json
    pipeline.run()
    for value, expected in (("False", 1), ("True", 2)):
        scim.patch(
            f"/Users/{users[0]['id']}",
            json=patch({"op": "Replace", "path": "active", "value": value}),
        )
        pipeline.run()
        assert len(downstream.group(group["displayName"])["members"]) == expected
    assert downstream.user(users[0]["userName"])["active"] is True


def test_disable_mode_keeps_a_disabled_user_in_the_targets_groups(
    scim, pipeline, add_target, downstream
):
    add_target(deprovision="disable")
    user = create_user(scim)
    group = scim.post("/Groups", json=entra_group(members=[{"value": user["id"]}])).json
    pipeline.run()
    scim.patch(
        f"/Users/{user['id']}", json=patch({"op": "Replace", "path": "active", "value": "False"})
    )
    pipeline.run()
    assert downstream.user(user["userName"])["active"] is False
    assert len(downstream.group(group["displayName"])["members"]) == 1
