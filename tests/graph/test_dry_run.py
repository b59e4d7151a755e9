"""A dry run reports the drift a real run would heal, and stores nothing but its run record:
the real run after it starts from the same state and heals everything it reported."""

from __future__ import annotations

import pytest

from tests.factories import patch
from tests.graph.views import groups, keyspace, member_names, users

DRIFT = ("missing", "unassigned", "attributes", "membership")


def counts(report: dict) -> dict[str, int]:
    return {kind: report["drift"][kind] for kind in DRIFT}


def assign_a_group(tenant) -> None:
    """An assigned group, so that runs after the first are incremental (without one every
    run reads everything)."""
    staff = tenant.add_group(members=[tenant.add_user(mailNickname="staff")["id"]])
    tenant.assign(staff["id"])


def dry_then_real(reconcile, **options) -> tuple[dict, dict]:
    """An incremental dry run, then the incremental real run after it."""
    dry = reconcile(dry_run=True, **options)
    real = reconcile(**options)
    return dry, real


def test_first_dry_run_leaves_the_first_real_run_to_create_everything(scim, reconcile, tenant):
    a, b = tenant.add_user(mailNickname="a"), tenant.add_user(mailNickname="b")
    team = tenant.add_group(members=[a["id"], b["id"]], displayName="Team")
    tenant.assign(team["id"])
    dry, real = dry_then_real(reconcile)
    assert counts(dry) == {"missing": 3, "unassigned": 0, "attributes": 0, "membership": 1}
    assert counts(real) == counts(dry)
    assert member_names(scim, "Team") == {"a@contoso.test", "b@contoso.test"}


def test_user_missing_after_a_dry_run_is_created_and_made_a_member(scim, reconcile, tenant):
    a = tenant.add_user(mailNickname="a")
    team = tenant.add_group(members=[a["id"]], displayName="Team")
    tenant.assign(team["id"])
    reconcile()
    newcomer = tenant.add_user(mailNickname="newcomer")
    tenant.add_members(team["id"], newcomer["id"])
    dry, real = dry_then_real(reconcile)
    assert counts(dry) == {"missing": 1, "unassigned": 0, "attributes": 0, "membership": 1}
    assert counts(real) == counts(dry)
    assert member_names(scim, "Team") == {"a@contoso.test", "newcomer@contoso.test"}


def test_user_deleted_in_entra_after_a_dry_run_is_disabled(scim, reconcile, tenant):
    ada, bob = tenant.add_user(mailNickname="ada"), tenant.add_user(mailNickname="bob")
    for person in (ada, bob):
        tenant.assign(person["id"])
    assign_a_group(tenant)
    reconcile()
    tenant.delete_user(ada["id"])
    dry, real = dry_then_real(reconcile, guard_share=1.0)
    assert counts(dry) == {"missing": 0, "unassigned": 1, "attributes": 0, "membership": 0}
    assert counts(real) == counts(dry)
    assert users(scim)["ada@contoso.test"]["active"] is False


def test_attribute_drift_after_a_dry_run_is_patched(scim, reconcile, tenant):
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    assign_a_group(tenant)
    reconcile()
    tenant.update_user(ada["id"], jobTitle="Engineer")
    dry, real = dry_then_real(reconcile)
    assert counts(dry) == {"missing": 0, "unassigned": 0, "attributes": 1, "membership": 0}
    assert counts(real) == counts(dry)
    assert users(scim)["ada@contoso.test"]["title"] == "Engineer"


def test_group_deleted_in_entra_after_a_dry_run_is_deleted(scim, reconcile, tenant):
    a, b = tenant.add_user(mailNickname="a"), tenant.add_user(mailNickname="b")
    keep = tenant.add_group(members=[a["id"]], displayName="Keep")
    drop = tenant.add_group(members=[b["id"]], displayName="Drop")
    for group in (keep, drop):
        tenant.assign(group["id"])
    reconcile()
    tenant.unassign(drop["id"])
    tenant.delete_group(drop["id"])
    dry, real = dry_then_real(reconcile, guard_share=1.0)
    assert counts(dry) == {"missing": 0, "unassigned": 2, "attributes": 0, "membership": 0}
    assert counts(real) == counts(dry)
    assert set(groups(scim)) == {"Keep"}
    assert users(scim)["b@contoso.test"]["active"] is False


def test_wrong_members_after_a_dry_run_are_corrected(scim, reconcile, tenant):
    a, b, c = (tenant.add_user(mailNickname=n) for n in "abc")
    team = tenant.add_group(members=[a["id"], b["id"]], displayName="Team")
    for principal in (team, b, c):
        tenant.assign(principal["id"])
    reconcile()
    tenant.remove_members(team["id"], b["id"])
    tenant.add_members(team["id"], c["id"])
    dry, real = dry_then_real(reconcile)
    assert counts(dry) == {"missing": 0, "unassigned": 0, "attributes": 0, "membership": 1}
    assert counts(real) == counts(dry)
    assert member_names(scim, "Team") == {"a@contoso.test", "c@contoso.test"}


def test_group_unassigned_after_a_dry_run_is_deleted_and_its_members_disabled(
    scim, reconcile, tenant
):
    a, b = tenant.add_user(mailNickname="a"), tenant.add_user(mailNickname="b")
    keep = tenant.add_group(members=[a["id"]], displayName="Keep")
    gone = tenant.add_group(members=[b["id"]], displayName="Gone")
    for group in (keep, gone):
        tenant.assign(group["id"])
    reconcile()
    tenant.unassign(gone["id"])
    dry, real = dry_then_real(reconcile, guard_share=1.0)
    assert counts(dry) == {"missing": 0, "unassigned": 2, "attributes": 0, "membership": 0}
    assert counts(real) == counts(dry)
    assert set(groups(scim)) == {"Keep"}
    assert users(scim)["b@contoso.test"]["active"] is False


def test_full_dry_run_after_an_incremental_one_changes_nothing_either(scim, reconcile, tenant):
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    assign_a_group(tenant)
    reconcile()
    tenant.update_user(ada["id"], jobTitle="Engineer")
    reconcile(dry_run=True)
    dry_full = reconcile(full=True, dry_run=True)
    real = reconcile()
    assert counts(dry_full)["attributes"] == counts(real)["attributes"] == 1
    assert users(scim)["ada@contoso.test"]["title"] == "Engineer"


@pytest.fixture
def drifted(scim, reconcile, tenant) -> dict[str, dict]:
    """A directory in step with Entra, then drift of every kind, on both sides."""
    a, b, c, d = (tenant.add_user(mailNickname=n) for n in "abcd")
    team = tenant.add_group(members=[a["id"], b["id"]], displayName="Team")
    other = tenant.add_group(members=[c["id"]], displayName="Other")
    for principal in (team, other, d):
        tenant.assign(principal["id"])
    reconcile()
    newcomer = tenant.add_user(mailNickname="newcomer")
    tenant.add_members(team["id"], newcomer["id"])
    tenant.remove_members(team["id"], a["id"])
    tenant.delete_user(b["id"])
    tenant.update_user(d["id"], jobTitle="Engineer")
    tenant.unassign(other["id"])
    d_record = users(scim)["d@contoso.test"]
    scim.patch(
        f"/Users/{d_record['id']}",
        json=patch({"op": "replace", "path": "displayName", "value": "Renamed here"}),
    )
    return {"d": d, "team": team, "other": other}


@pytest.mark.parametrize("how", ["full", "incremental", "user", "group"])
def test_dry_run_stores_nothing_but_its_run_record(how, drifted, reconcile, runner, redis_client):
    before = keyspace(redis_client)
    if how in ("full", "incremental"):
        report = reconcile(full=how == "full", dry_run=True, guard_share=1.0)
        assert all(report["drift"][kind] for kind in DRIFT), report["drift"]
    elif how == "user":
        report = runner().reconcile_object("user", drifted["d"]["id"], dry_run=True)
        assert report["drift"]["attributes"] == 1
    else:
        report = runner().reconcile_object("group", drifted["team"]["id"], dry_run=True)
        assert report["drift"]["membership"] == 1
    assert keyspace(redis_client) == before
