"""A user provisioned by a sign-in and the same user found by Graph reconciliation are one
record: the sign-in links Entra's object id (Graph's user ``id``) as the reconciler does."""

from __future__ import annotations

from tests.sso.conftest import acs, add_idp, entra  # noqa: F401 - fixtures
from tests.sso.saml_idp import User


def test_reconcile_keeps_the_user_a_sign_in_created(acs, add_idp, reconcile, tenant):  # noqa: F811
    add_idp()
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    acs.sign_in(User(upn=ada["userPrincipalName"], object_id=ada["id"]))
    jit = acs.state.directory.find("user", "unique", "userName", ada["userPrincipalName"])[0]
    report = reconcile()
    assert report["status"] == "completed", report
    assert acs.users() == 1
    record = acs.state.directory.get("user", jit.id)
    assert record.doc["externalId"] == "ada"  # the reconciler's mapping took over


def test_sign_in_finds_the_user_reconciliation_created(acs, add_idp, reconcile, tenant):  # noqa: F811
    add_idp(match_username=False)
    ada = tenant.add_user(mailNickname="ada")
    tenant.assign(ada["id"])
    reconcile()
    assert acs.users() == 1
    answer = acs.sign_in(User(upn=ada["userPrincipalName"], object_id=ada["id"]))
    assert answer.status_code == 200
    assert acs.users() == 1
