"""Deprovisions racing group membership: deletes, disables, re-enables and scope changes."""

from __future__ import annotations

import random
import threading

from tests.faults.invariant import converge

BUSY_SECONDS = 0.3
"""How long the SCIM target takes per request while the worker is kept busy."""


def test_user_deleted_while_the_worker_is_busy_leaves_its_groups_at_a_scim_target(bridge, fakes):
    scim = fakes.scim(bridge, deprovision="delete")
    group = bridge.create_group()
    leaving, staying = bridge.create_user(), bridge.create_user()
    bridge.members(group["id"], "add", [leaving["id"], staying["id"]])
    converge(bridge, [scim])
    scim.fake.knobs.slow(BUSY_SECONDS)
    for _ in range(4):
        bridge.create_user()
    bridge.delete("User", leaving["id"])
    scim.fake.knobs.slow(0)
    converge(bridge, [scim])


def test_user_enabled_after_joining_a_scoping_group_gets_its_memberships(bridge, fakes):
    group = bridge.create_group()
    scope = {"type": "groups", "groups": [group["id"]]}
    hook = fakes.webhook(bridge, scope=scope)
    scim = fakes.scim(bridge, scope=scope)
    user = bridge.create_user(active=False)
    other = bridge.create_user()
    bridge.members(group["id"], "add", [user["id"], other["id"]])
    converge(bridge, [hook, scim])
    bridge.set_user(user["id"], "active", True)
    converge(bridge, [hook, scim])


def test_scope_change_alone_reprojects_the_target(bridge, fakes):
    first, second = bridge.create_group(), bridge.create_group()
    hook = fakes.webhook(bridge, scope={"type": "groups", "groups": [first["id"]]})
    users = [bridge.create_user()["id"] for _ in range(4)]
    bridge.members(first["id"], "add", users[:2])
    bridge.members(second["id"], "add", users[2:])
    converge(bridge, [hook])
    bridge.change_target(hook, scope={"type": "groups", "groups": [second["id"]]})
    converge(bridge, [hook])


def test_membership_churn_racing_deletes_disables_and_scope_changes_converges(bridge, fakes):
    rng = random.Random(7)
    groups = [bridge.create_group()["id"] for _ in range(3)]
    hook = fakes.webhook(bridge, scope={"type": "groups", "groups": groups[:1]})
    scim = fakes.scim(bridge, deprovision="delete")
    for handle in (hook, scim):  # the groups were there before the targets
        bridge.admin("POST", f"/targets/{handle.id}/sync")
    users = [bridge.create_user()["id"] for _ in range(12)]
    for gid in groups:
        bridge.members(gid, "add", rng.sample(users, 6))
    converge(bridge, [hook, scim])
    scim.fake.knobs.slow(0.05)
    doomed = users[:3]

    def churn() -> None:
        for _ in range(20):
            gid, uid = rng.choice(groups), rng.choice(users[3:])
            bridge.members(gid, rng.choice(["add", "remove"]), [uid])

    def deprovision() -> None:
        for uid in doomed:
            bridge.delete("User", uid)
        for uid in users[3:6]:
            bridge.set_user(uid, "active", False)
        bridge.set_user(users[3], "active", True)

    def rescope() -> None:
        for chosen in (groups[:2], groups[1:], groups):
            bridge.change_target(hook, scope={"type": "groups", "groups": chosen})
        bridge.admin("POST", f"/targets/{hook.id}/sync")

    threads = [threading.Thread(target=f) for f in (churn, deprovision, rescope)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    scim.fake.knobs.slow(0)
    converge(bridge, [hook, scim], timeout=30)
