"""Objects a delta round names only in part (Graph sends "at least the updated
properties"): one that must be created is read in full first, and one that still cannot be
mapped is an error of that object, never a create from a partial body."""

from __future__ import annotations

import json

import pytest

from tests.graph.views import groups, member_names, users


@pytest.fixture
def changed_only(tenant):
    """Incremental rounds carry only the properties that changed."""
    tenant.only_changed_properties = True


def test_newly_assigned_user_named_in_part_is_read_in_full_and_created(
    scim, reconcile, tenant, changed_only
):
    ada, bob = tenant.add_user(mailNickname="ada"), tenant.add_user(mailNickname="bob")
    staff = tenant.add_group(members=[ada["id"]])
    tenant.assign(staff["id"])
    reconcile()
    tenant.assign(bob["id"])
    tenant.update_user(bob["id"], jobTitle="Engineer")
    report = reconcile()
    assert (report["status"], report["errors"]) == ("completed", [])
    created = users(scim)["bob@contoso.test"]
    assert (created["title"], created["displayName"], created["externalId"]) == (
        "Engineer",
        bob["displayName"],
        "bob",
    )


def test_group_gone_from_the_directory_is_recreated_in_full_from_a_members_only_item(
    scim, reconcile, tenant, changed_only
):
    a, b, c = (tenant.add_user(mailNickname=n) for n in "abc")
    team = tenant.add_group(members=[a["id"], b["id"]], displayName="Team")
    tenant.assign(team["id"])
    reconcile()
    scim.delete(f"/Groups/{groups(scim)['Team']['id']}")
    tenant.add_members(team["id"], c["id"])
    report = reconcile()
    assert (report["status"], report["errors"]) == ("completed", [])
    assert member_names(scim, "Team") == {"a@contoso.test", "b@contoso.test", "c@contoso.test"}


@pytest.fixture
def name_from_mail(tmp_path) -> str:
    """A group mapping taking displayName from Graph's ``mail``: security groups have none."""
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"displayName": "mail"}))
    return str(path)


def test_group_graph_gives_no_name_for_is_an_error_of_that_group(
    scim, reconcile, tenant, name_from_mail
):
    ada = tenant.add_user(mailNickname="ada")
    team = tenant.add_group(members=[ada["id"]])
    tenant.assign(team["id"])
    report = reconcile(group_mapping_file=name_from_mail)
    assert report["status"] == "completed_with_errors"
    assert report["errors"] == [
        f"Unmappable: group {team['id']}: Graph gives no value for displayName (from mail); "
        "not created"
    ]
    assert groups(scim) == {}
    assert set(users(scim)) == {"ada@contoso.test"}, "the rest of the run went on"


def test_unmappable_group_named_by_a_members_only_item_is_not_created_in_part(
    scim, reconcile, tenant, name_from_mail, changed_only
):
    ada, bob = tenant.add_user(mailNickname="ada"), tenant.add_user(mailNickname="bob")
    team = tenant.add_group(members=[ada["id"]])
    tenant.assign(team["id"])
    reconcile(group_mapping_file=name_from_mail)
    tenant.add_members(team["id"], bob["id"])
    report = reconcile(group_mapping_file=name_from_mail)
    assert report["status"] == "completed_with_errors"
    assert [e.split(":")[0] for e in report["errors"]] == ["Unmappable"]
    assert team["id"] in report["errors"][0]
    assert groups(scim) == {}
    assert set(users(scim)) == {"ada@contoso.test", "bob@contoso.test"}


def test_user_gone_from_graph_before_it_was_read_in_full_is_an_error(
    scim, reconcile, tenant, fake_graph, changed_only
):
    """Between the delta round and the read, the user was deleted: reported, not created."""
    ada, bob = tenant.add_user(mailNickname="ada"), tenant.add_user(mailNickname="bob")
    staff = tenant.add_group(members=[ada["id"]])
    tenant.assign(staff["id"])
    reconcile()
    tenant.assign(bob["id"])
    tenant.update_user(bob["id"], jobTitle="Engineer")
    fake_graph.hide_users.add(bob["id"])
    report = reconcile()
    assert report["status"] == "completed_with_errors"
    assert report["errors"] == [f"NotFound: user {bob['id']}: Graph no longer has it"]
    assert set(users(scim)) == {"ada@contoso.test"}
