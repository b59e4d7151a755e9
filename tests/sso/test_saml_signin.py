"""Sign-ins that succeed: the user is created or updated through the directory's write
path (announced, so targets receive it), linked for Graph and later SCIM pushes, and sent
on to an allowed RelayState."""

from __future__ import annotations

import base64
import dataclasses

from lxml import etree

from app import create_app
from bridge.graph.links import Links
from tests.factories import entra_group, entra_user
from tests.live_server import serve
from tests.sso.saml_idp import TestIdp, User


def user_named(acs, upn: str):
    found = acs.state.directory.find("user", "unique", "userName", upn.casefold())
    assert len(found) == 1
    return found[0]


def test_first_sign_in_creates_the_user_from_entra_claims(acs, add_idp):
    add_idp()
    user = User()
    answer = acs.sign_in(user)
    assert answer.status_code == 200 and b"You are provisioned" in answer.data
    record = user_named(acs, user.upn)
    assert record.doc["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert record.doc["displayName"] == "Ada Lovelace"
    assert record.doc["emails"] == [{"value": user.email, "type": "work", "primary": True}]
    assert record.doc["active"] is True
    assert acs.changes() == 1


def test_first_sign_in_reaches_a_webhook_target(acs, add_idp, admin, receiver, pipeline):
    from tests.admin.conftest import webhook

    assert admin.post("/targets", json=webhook(receiver)).status_code == 201
    add_idp()
    user = User()
    assert acs.sign_in(user).status_code == 200
    pipeline.run()
    created = [e for e in receiver.events if e["type"] == "user.created"]
    assert [e["data"]["resource"]["userName"] for e in created] == [user.upn]
    assert receiver.rejected == 0


def test_first_sign_in_reaches_a_scim_target(acs, add_idp, admin, settings, pipeline):
    downstream = create_app(dataclasses.replace(settings, key_prefix="downstream"))
    _, secret = downstream.extensions["bridge"].tokens.create("t")
    try:
        with serve(downstream) as base:
            body = {
                "name": "crm",
                "kind": "scim",
                "url": f"{base}/scim/v2",
                "auth": {"type": "bearer", "token": secret},
            }
            assert admin.post("/targets", json=body).status_code == 201
            add_idp()
            user = User()
            assert acs.sign_in(user).status_code == 200
            pipeline.run()
            there = downstream.extensions["bridge"].directory
            found = there.find("user", "unique", "userName", user.upn.casefold())
            assert len(found) == 1 and found[0].doc["displayName"] == "Ada Lovelace"
    finally:
        downstream.extensions["bridge"].redis.close()


def test_sign_in_links_the_object_id_for_graph_reconciliation(acs, add_idp):
    add_idp()
    user = User()
    acs.sign_in(user)
    record = user_named(acs, user.upn)
    links = Links(acs.state.redis, acs.state.settings.key_prefix)
    assert links.bridge_ids("user", [user.object_id]) == {user.object_id: record.id}


def test_sign_in_redirects_to_an_allowed_relay_state(acs, add_idp):
    add_idp()
    answer = acs.sign_in(User(), relay_state="https://app.example.com/welcome?x=1")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "https://app.example.com/welcome?x=1"


def test_login_sends_an_authn_request_and_keeps_next_as_relay_state(acs, add_idp, entra):
    add_idp()
    answer = acs.login("https://app.example.com/home")
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(entra.sso_url + "?SAMLRequest=")
    assert "RelayState=https%3A%2F%2Fapp.example.com%2Fhome" in location


def test_second_sign_in_updates_each_login(acs, add_idp):
    add_idp(update="each_login")
    user = User()
    acs.sign_in(user)
    user.given_name, user.display_name = "Augusta", "Augusta Ada King"
    assert acs.sign_in(user).status_code == 200
    record = user_named(acs, user.upn)
    assert record.doc["name"]["givenName"] == "Augusta"
    assert record.doc["displayName"] == "Augusta Ada King"
    assert acs.users() == 1 and acs.changes() == 2


def test_unchanged_claims_write_nothing(acs, add_idp):
    add_idp(update="each_login")
    user = User()
    acs.sign_in(user)
    acs.sign_in(user)
    assert acs.changes() == 1


def test_first_login_mode_updates_an_existing_user_once(acs, add_idp, scim):
    add_idp(update="first_login")
    user = User()
    scim.post("/Users", json=entra_user(userName=user.upn, displayName="Old Name"))
    acs.sign_in(user)
    assert user_named(acs, user.upn).doc["displayName"] == "Ada Lovelace"
    user.display_name = "Later Name"
    acs.sign_in(user)
    assert user_named(acs, user.upn).doc["displayName"] == "Ada Lovelace"


def test_never_mode_leaves_an_existing_user_as_it_is(acs, add_idp, scim):
    add_idp(update="never")
    user = User()
    scim.post("/Users", json=entra_user(userName=user.upn, displayName="SCIM Name"))
    changes = acs.changes()
    assert acs.sign_in(user).status_code == 200
    assert user_named(acs, user.upn).doc["displayName"] == "SCIM Name"
    assert acs.changes() == changes and acs.users() == 1


def test_sign_in_of_a_user_pushed_by_scim_links_it_without_a_duplicate(acs, add_idp, scim):
    add_idp()
    user = User()
    pushed = scim.post("/Users", json=entra_user(userName=user.upn)).json
    acs.sign_in(user)
    assert acs.users() == 1
    assert user_named(acs, user.upn).id == pushed["id"]


def test_later_scim_push_finds_and_updates_the_jit_user(acs, add_idp, scim):
    add_idp()
    user = User()
    acs.sign_in(user)
    jit_id = user_named(acs, user.upn).id
    # Entra's provisioning service first looks the user up by its matching attribute
    found = scim.get(f'/Users?filter=userName eq "{user.upn}"').json
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == jit_id
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "externalId", "value": "ada"},
            {"op": "replace", "path": "title", "value": "Analyst"},
        ],
    }
    assert scim.patch(f"/Users/{jit_id}", json=patch).status_code == 200
    assert acs.users() == 1
    assert user_named(acs, user.upn).doc["title"] == "Analyst"


def test_sign_in_after_scim_changed_the_user_name_finds_it_by_object_id(acs, add_idp, scim):
    add_idp()
    user = User()
    acs.sign_in(user)
    jit_id = user_named(acs, user.upn).id
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "renamed@contoso.com"}],
    }
    assert scim.patch(f"/Users/{jit_id}", json=patch).status_code == 200
    user.upn = "ada.new@contoso.com"
    assert acs.sign_in(user).status_code == 200
    assert acs.users() == 1
    assert user_named(acs, user.upn).id == jit_id


def test_user_with_the_object_id_as_external_id_is_matched(acs, add_idp, scim):
    add_idp(match_username=False)
    user = User()
    pushed = scim.post("/Users", json=entra_user(externalId=user.object_id)).json
    acs.sign_in(user)
    assert acs.users() == 1
    assert acs.state.directory.get("user", pushed["id"]).doc["userName"] == user.upn


def test_without_user_name_matching_an_unlinked_user_name_is_a_conflict(acs, add_idp, scim):
    add_idp(match_username=False)
    user = User()
    scim.post("/Users", json=entra_user(userName=user.upn))
    changes = acs.changes()
    answer = acs.sign_in(user)
    assert answer.status_code == 409 and b"(conflict)" in answer.data
    assert acs.users() == 1 and acs.changes() == changes


def test_group_claims_add_memberships(acs, add_idp, scim):
    add_idp(groups=True)
    group_oid = "6f1a0c52-0000-4000-8000-000000000001"
    group = scim.post("/Groups", json=entra_group(externalId=group_oid)).json
    user = User(groups=[group_oid, "6f1a0c52-0000-4000-8000-00000000ffff"])
    assert acs.sign_in(user).status_code == 200
    record = acs.state.directory.get("user", user_named(acs, user.upn).id, groups=True)
    assert record.groups == [group["id"]]


def test_group_claims_are_ignored_unless_enabled(acs, add_idp, scim):
    add_idp()
    group_oid = "6f1a0c52-0000-4000-8000-000000000002"
    scim.post("/Groups", json=entra_group(externalId=group_oid))
    user = User(groups=[group_oid])
    acs.sign_in(user)
    assert acs.state.directory.get("user", user_named(acs, user.upn).id, groups=True).groups == []


def test_response_signed_instead_of_assertion_is_accepted(acs, add_idp):
    add_idp()
    assert acs.sign_in(User(), sign="response").status_code == 200
    assert acs.users() == 1


def test_second_pinned_certificate_is_accepted_during_rollover(acs, add_idp, entra):
    nxt = TestIdp(tenant_id=entra.tenant_id)
    add_idp(certificates=[entra.cert, nxt.cert])
    assert acs.sign_in(User(), key=nxt.key, cert=nxt.cert).status_code == 200


def test_idp_initiated_response_is_accepted_when_enabled(acs, add_idp):
    add_idp(idp_initiated=True)
    assert acs.post(acs.response(User())).status_code == 200
    assert acs.users() == 1


def test_sp_metadata_names_the_entity_id_and_acs(acs, add_idp):
    from tests.sso.conftest import ACS_URL, SP_ENTITY_ID

    add_idp()
    answer = acs.client.get("/sso/saml/entra/metadata")
    assert answer.status_code == 200
    assert f'entityID="{SP_ENTITY_ID}"'.encode() in answer.data
    assert f'Location="{ACS_URL}"'.encode() in answer.data


def test_wait_holds_the_redirect_until_the_target_has_the_user(
    acs, add_idp, admin, receiver, pipeline
):
    import threading

    from tests.admin.conftest import webhook

    assert admin.post("/targets", json=webhook(receiver)).status_code == 201
    add_idp(wait_seconds=10)
    user = User()
    rid = acs.request_id()
    response = acs.response(user, in_response_to=rid)
    answers = []

    def sign_in() -> None:
        answer = acs.post(response)
        answers.append((answer, [e["type"] for e in receiver.events]))  # when it arrived

    signing_in = threading.Thread(target=sign_in)
    signing_in.start()
    while signing_in.is_alive():
        pipeline.run()  # the worker's part, meanwhile
        signing_in.join(0.05)
    answer, received_by_then = answers[0]
    assert answer.status_code == 200
    assert "user.created" in received_by_then


def test_wait_gives_up_after_its_time_and_signs_in_anyway(acs, add_idp, admin, receiver):
    import time

    from tests.admin.conftest import webhook

    assert admin.post("/targets", json=webhook(receiver)).status_code == 201
    add_idp(wait_seconds=0.5)
    started = time.monotonic()
    answer = acs.sign_in(User())
    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.5
    assert receiver.events == []


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
JOB_TITLE = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/jobtitle"
DEPARTMENT = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/department"


def test_claim_mapping_fills_more_attributes_on_create_and_update(acs, add_idp):
    add_idp(claim_mapping={"title": JOB_TITLE, f"{ENTERPRISE}:department": DEPARTMENT})
    user = User(extra={JOB_TITLE: "Analyst", DEPARTMENT: "Research"})
    assert acs.sign_in(user).status_code == 200
    record = user_named(acs, user.upn)
    assert record.doc["title"] == "Analyst"
    assert record.doc[ENTERPRISE] == {"department": "Research"}
    user.extra = {JOB_TITLE: "Engineer", DEPARTMENT: "Engines"}
    acs.sign_in(user)
    record = user_named(acs, user.upn)
    assert record.doc["title"] == "Engineer" and record.doc[ENTERPRISE]["department"] == "Engines"


def test_claim_mapping_overrides_a_default(acs, add_idp):
    nick = "http://schemas.example.com/claims/preferredname"
    add_idp(claim_mapping={"displayName": nick})
    user = User(extra={nick: "Countess Lovelace"})
    acs.sign_in(user)
    assert user_named(acs, user.upn).doc["displayName"] == "Countess Lovelace"


def test_claim_mapping_to_an_unknown_path_is_422(admin, entra):
    answer = admin.post("/idps", json=entra.config(claim_mapping={"password": "x"}))
    assert answer.status_code == 422


def test_user_name_of_a_user_linked_to_another_entra_object_is_a_conflict(acs, add_idp):
    add_idp()
    first = User()
    acs.sign_in(first)
    changes = acs.changes()
    reused = User(upn=first.upn)  # the same UPN, now on another Entra object
    answer = acs.sign_in(reused)
    assert answer.status_code == 409 and b"(conflict)" in answer.data
    assert acs.users() == 1 and acs.changes() == changes


def test_group_claims_remove_memberships_only_when_enabled(acs, add_idp, scim):
    add_idp(groups=True, groups_remove=True)
    kept_oid = "6f1a0c52-0000-4000-8000-000000000010"
    gone_oid = "6f1a0c52-0000-4000-8000-000000000011"
    kept = scim.post("/Groups", json=entra_group(externalId=kept_oid)).json
    gone = scim.post("/Groups", json=entra_group(externalId=gone_oid)).json
    local = scim.post("/Groups", json={**entra_group(), "externalId": None}).json
    user = User(groups=[kept_oid, gone_oid])
    acs.sign_in(user)
    uid = user_named(acs, user.upn).id
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}],
    }
    assert scim.patch(f"/Groups/{local['id']}", json=patch).status_code in (200, 204)
    user.groups = [kept_oid]
    acs.sign_in(user)
    groups = acs.state.directory.get("user", uid, groups=True).groups
    assert sorted(groups) == sorted([kept["id"], local["id"]])  # a bridge-only group stays
    assert gone["id"] not in groups


def test_group_claims_never_remove_by_default(acs, add_idp, scim):
    add_idp(groups=True)
    oid = "6f1a0c52-0000-4000-8000-000000000012"
    group = scim.post("/Groups", json=entra_group(externalId=oid)).json
    user = User(groups=[oid])
    acs.sign_in(user)
    user.groups = ["6f1a0c52-0000-4000-8000-000000000013"]
    acs.sign_in(user)
    uid = user_named(acs, user.upn).id
    assert acs.state.directory.get("user", uid, groups=True).groups == [group["id"]]


def test_groups_overage_claim_leaves_memberships_to_the_next_reconcile(acs, add_idp, scim):
    # more than 150 groups: Entra sends a groups.link claim instead of the groups
    add_idp(groups=True, groups_remove=True)
    group_oid = "6f1a0c52-0000-4000-8000-000000000010"
    group = scim.post("/Groups", json=entra_group(externalId=group_oid)).json
    user = User(groups=[group_oid])
    acs.sign_in(user)
    changes = acs.changes()
    user.groups = []
    user.extra = {"http://schemas.microsoft.com/claims/groups.link": "https://graph.windows.net/x"}
    assert acs.sign_in(user).status_code == 200
    record = acs.state.directory.get("user", user_named(acs, user.upn).id, groups=True)
    assert record.groups == [group["id"]]  # nothing removed on an overage
    assert acs.changes() == changes


def test_a_comment_inside_the_name_id_does_not_cut_it_short(acs, add_idp, entra):
    # the signature covers the text without comments; reading only the text before an
    # inserted comment would sign in "ada@contoso.com" (CVE-2017-11427's class of bug)
    add_idp()
    user = User(upn="ada@contoso.com.evil.example")
    raw = etree.tostring(acs.response(user, in_response_to=acs.request_id())).decode()
    raw = raw.replace(">ada@contoso.com.evil.example<", ">ada@contoso.com<!---->.evil.example<")
    assert raw.count("<!---->") >= 2  # the NameID and the name claim
    answer = acs.post(base64.b64encode(raw.encode()).decode())
    assert answer.status_code == 200, answer.data
    assert user_named(acs, "ada@contoso.com.evil.example")
    assert not acs.state.directory.find("user", "unique", "userName", "ada@contoso.com")
