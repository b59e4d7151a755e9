"""Reconciling the directory with Entra through Microsoft Graph: the real msal and
msgraph-sdk against the fake Graph, the real directory on the test Redis."""

from __future__ import annotations

import pytest

from bridge.graph.links import Links
from bridge.graph.reconciler import Cancelled
from bridge.graph.runner import SCOPE
from bridge.graph.runs import Runs
from bridge.graph.translate import ENTERPRISE
from tests.factories import patch
from tests.graph.views import groups, users


def test_initial_sync_creates_assigned_users_with_entras_default_mapping(scim, reconcile, tenant):
    boss = tenant.add_user(mailNickname="boss")
    ada = tenant.add_user(
        mailNickname="ada", department="Research", employeeId="E1", jobTitle="CTO"
    )
    tenant.update_user(ada["id"], manager=boss["id"])
    tenant.add_user(mailNickname="outsider")
    tenant.assign(ada["id"])
    tenant.assign(boss["id"])
    report = reconcile()
    found = users(scim)
    assert set(found) == {"ada@contoso.test", "boss@contoso.test"}
    user = found["ada@contoso.test"]
    assert user["externalId"] == "ada"
    assert user["active"] is True
    assert user["title"] == "CTO"
    assert user["name"] == {"givenName": "User", "familyName": ada["surname"]}
    assert user["emails"] == [{"type": "work", "value": "ada@contoso.test"}]
    assert user[ENTERPRISE]["department"] == "Research"
    assert user[ENTERPRISE]["employeeNumber"] == "E1"
    assert user[ENTERPRISE]["manager"]["value"] == found["boss@contoso.test"]["id"]
    assert report["drift"]["missing"] == 2


def test_members_of_assigned_groups_are_in_scope_and_groups_are_created(scim, reconcile, tenant):
    a, b = tenant.add_user(mailNickname="a"), tenant.add_user(mailNickname="b")
    group = tenant.add_group(members=[a["id"], b["id"]], displayName="Engineers")
    tenant.assign(group["id"])
    reconcile()
    found = users(scim)
    assert set(found) == {"a@contoso.test", "b@contoso.test"}
    engineers = groups(scim)["Engineers"]
    assert engineers["externalId"] == group["id"]
    assert {m["value"] for m in engineers["members"]} == {
        found["a@contoso.test"]["id"],
        found["b@contoso.test"]["id"],
    }


def test_incremental_run_applies_only_what_changed(scim, reconcile, tenant, redis_client):
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    reconcile()
    before = redis_client.xlen("bridge:changes")
    tenant.update_user(ada["id"], jobTitle="Engineer")
    report = reconcile()
    assert users(scim)["ada@contoso.test"]["title"] == "Engineer"
    assert report["drift"]["attributes"] == 1
    assert redis_client.xlen("bridge:changes") == before + 1, "the heal is announced like a push"


def test_partial_delta_objects_do_not_erase_other_attributes(scim, reconcile, tenant):
    """Graph's delta returns at least the changed properties, not always all of them."""
    ada = tenant.add_user(mailNickname="ada", department="Research")
    tenant.assign(ada["id"])
    reconcile()
    tenant.only_changed_properties = True
    tenant.update_user(ada["id"], jobTitle="Engineer")
    reconcile()
    user = users(scim)["ada@contoso.test"]
    assert (user["title"], user[ENTERPRISE]["department"]) == ("Engineer", "Research")


def test_disabled_account_becomes_inactive(scim, reconcile, tenant):
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    reconcile()
    tenant.update_user(ada["id"], accountEnabled=False)
    reconcile()
    assert users(scim)["ada@contoso.test"]["active"] is False


def test_user_deleted_in_entra_is_disabled(scim, reconcile, tenant):
    ada, bob = tenant.add_user(mailNickname="ada"), tenant.add_user(mailNickname="bob")
    for u in (ada, bob):
        tenant.assign(u["id"])
    reconcile()
    tenant.delete_user(ada["id"])
    report = reconcile(guard_share=1.0)
    assert users(scim)["ada@contoso.test"]["active"] is False
    assert users(scim)["bob@contoso.test"]["active"] is True
    assert report["drift"]["unassigned"] == 1


def test_unassigned_user_is_disabled(scim, reconcile, tenant):
    ada, bob = tenant.add_user(mailNickname="ada"), tenant.add_user(mailNickname="bob")
    for u in (ada, bob):
        tenant.assign(u["id"])
    reconcile()
    tenant.unassign(ada["id"])
    reconcile(guard_share=1.0)
    assert users(scim)["ada@contoso.test"]["active"] is False


def test_newly_assigned_existing_user_is_created(scim, reconcile, tenant):
    ada, bob = tenant.add_user(mailNickname="ada"), tenant.add_user(mailNickname="bob")
    tenant.assign(ada["id"])
    reconcile()
    tenant.assign(bob["id"])
    report = reconcile()
    assert set(users(scim)) == {"ada@contoso.test", "bob@contoso.test"}
    assert report["drift"]["missing"] == 1


def test_membership_changes_are_applied(scim, reconcile, tenant):
    a, b, c = (tenant.add_user(mailNickname=n) for n in "abc")
    group = tenant.add_group(members=[a["id"], b["id"]], displayName="Team")
    tenant.assign(group["id"])
    tenant.assign(c["id"])
    reconcile()
    tenant.add_members(group["id"], c["id"])
    tenant.remove_members(group["id"], a["id"])
    report = reconcile(guard_share=1.0)
    found = users(scim)
    members = {m["value"] for m in groups(scim)["Team"]["members"]}
    assert members == {found["b@contoso.test"]["id"], found["c@contoso.test"]["id"]}
    assert report["drift"]["membership"] == 1


def test_full_run_heals_drift_made_in_the_directory(scim, reconcile, tenant):
    ada, bob = (
        tenant.add_user(mailNickname="ada", jobTitle="CTO"),
        tenant.add_user(mailNickname="bob"),
    )
    for u in (ada, bob):
        tenant.assign(u["id"])
    reconcile()
    found = users(scim)
    scim.patch(
        f"/Users/{found['ada@contoso.test']['id']}",
        json=patch({"op": "replace", "path": "title", "value": "Intern"}),
    )
    scim.delete(f"/Users/{found['bob@contoso.test']['id']}")
    scim.post("/Users", json={"userName": "stray@contoso.test", "active": True})
    report = reconcile(full=True, guard_share=1.0)
    healed = users(scim)
    assert healed["ada@contoso.test"]["title"] == "CTO"
    assert "bob@contoso.test" in healed
    assert healed["stray@contoso.test"]["active"] is False
    assert (
        report["drift"]["attributes"],
        report["drift"]["missing"],
        report["drift"]["unassigned"],
    ) == (1, 1, 1)


def test_dry_run_reports_drift_and_changes_nothing(scim, reconcile, tenant, redis_client):
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    report = reconcile(full=True, dry_run=True)
    assert report["drift"]["missing"] == 1
    assert report["drift"]["samples"]["missing"] == [ada["id"]]
    assert users(scim) == {}
    assert redis_client.xlen("bridge:changes") == 0


def test_deletion_guard_stops_and_waits_for_confirmation(app, scim, reconcile, runner, tenant):
    people = [tenant.add_user(mailNickname=f"u{i}") for i in range(5)]
    for u in people:
        tenant.assign(u["id"])
    reconcile()
    for u in people[:3]:
        tenant.unassign(u["id"])
    report = reconcile(guard_max=2)
    assert report["status"] == "awaiting_confirmation"
    assert all(u["active"] for u in users(scim).values()), "nothing deprovisioned yet"
    runs = Runs(app.extensions["bridge"].redis)
    assert runs.get(SCOPE)["status"] == "awaiting_confirmation"
    assert len(runs.pending(SCOPE)) == 3
    runner().confirm()
    assert sorted(n for n, u in users(scim).items() if not u["active"]) == [
        "u0@contoso.test",
        "u1@contoso.test",
        "u2@contoso.test",
    ]


def test_throttled_requests_are_retried(scim, reconcile, tenant, fake_graph):
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    fake_graph.throttle(1)
    reconcile()
    assert set(users(scim)) == {"ada@contoso.test"}


def test_expired_delta_link_falls_back_to_a_full_run(scim, reconcile, tenant):
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    reconcile()
    tenant.expire_delta_tokens()
    tenant.update_user(ada["id"], jobTitle="Engineer")
    reconcile()
    assert users(scim)["ada@contoso.test"]["title"] == "Engineer"


def test_cancelled_run_stops(app, reconcile, tenant):
    tenant.assign(tenant.add_user(mailNickname="ada")["id"])
    runs = Runs(app.extensions["bridge"].redis)
    runs.start(SCOPE)
    runs.cancel(SCOPE)
    with pytest.raises(Cancelled):
        reconcile()


def test_existing_directory_user_is_matched_not_duplicated(scim, reconcile, tenant):
    """A user Entra pushed earlier is found by userName and linked, not created twice."""
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    pushed = scim.post(
        "/Users", json={"userName": "ADA@contoso.test", "externalId": "ada", "active": True}
    ).json
    reconcile()
    found = users(scim)
    assert list(found) == ["ADA@contoso.test"] or list(found) == ["ada@contoso.test"]
    assert next(iter(found.values()))["id"] == pushed["id"]


def test_single_user_is_reconciled_on_demand(scim, tenant, runner):
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    runner().reconcile_object("user", "ada@contoso.test")
    assert set(users(scim)) == {"ada@contoso.test"}


def test_incremental_run_does_not_list_group_members_again(scim, reconcile, tenant, fake_graph):
    """Members come from the groups delta's members@delta, kept between runs."""
    people = [tenant.add_user(mailNickname=f"u{i}") for i in range(3)]
    group = tenant.add_group(members=[p["id"] for p in people])
    tenant.assign(group["id"])
    reconcile()
    listed = len(fake_graph.graph_requests("/members"))
    newcomer = tenant.add_user(mailNickname="newcomer")
    tenant.add_members(group["id"], newcomer["id"])
    reconcile()
    assert len(fake_graph.graph_requests("/members")) == listed
    assert "newcomer@contoso.test" in users(scim)


def test_newly_assigned_group_is_created_with_its_members(scim, reconcile, tenant):
    a, b = tenant.add_user(mailNickname="a"), tenant.add_user(mailNickname="b")
    tenant.assign(a["id"])
    reconcile()
    group = tenant.add_group(members=[a["id"], b["id"]], displayName="Late")
    tenant.assign(group["id"])
    reconcile()
    found = users(scim)
    assert {m["value"] for m in groups(scim)["Late"]["members"]} == {
        found["a@contoso.test"]["id"],
        found["b@contoso.test"]["id"],
    }


def test_assigned_group_deleted_in_entra_is_deleted_and_its_members_leave_scope(
    scim, reconcile, tenant
):
    a, b = tenant.add_user(mailNickname="a"), tenant.add_user(mailNickname="b")
    keep = tenant.add_group(members=[b["id"]], displayName="Keep")
    drop = tenant.add_group(members=[a["id"]], displayName="Drop")
    tenant.assign(keep["id"])
    tenant.assign(drop["id"])
    reconcile()
    tenant.delete_group(drop["id"])
    reconcile(guard_share=1.0)
    assert set(groups(scim)) == {"Keep"}
    assert users(scim)["a@contoso.test"]["active"] is False


def test_reconciled_objects_are_linked_by_their_graph_ids(app, scim, reconcile, tenant):
    ada = tenant.add_user(mailNickname="ada")
    team = tenant.add_group(members=[ada["id"]], displayName="Team")
    tenant.assign(team["id"])
    reconcile()
    links = Links(app.extensions["bridge"].redis)
    assert (links.count("user"), links.count("group")) == (1, 1)
    assert links.bridge_ids("user", [ada["id"]]) == {
        ada["id"]: users(scim)["ada@contoso.test"]["id"]
    }
    assert links.graph_ids("group", [groups(scim)["Team"]["id"]]) == {
        groups(scim)["Team"]["id"]: team["id"]
    }
