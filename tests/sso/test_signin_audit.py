"""Every JIT sign-in in the audit trail (``GET /admin/audit``) and the metrics: who, which
IdP, created/updated/refused and why; never the assertion's content."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import REGISTRY

from bridge.web.observe import audit_log
from tests.sso.saml_idp import User

METRIC = "bridge_jit_signins_total"


def signins(admin, app, **query) -> list[dict]:
    audit_log(app).flush()
    answer = admin.get("/audit", query_string={"resource": "signin", **query})
    assert answer.status_code == 200, answer.json
    return answer.json


def counted(idp: str, outcome: str, reason: str = "") -> float:
    labels = {"idp": idp, "outcome": outcome, "reason": reason}
    return REGISTRY.get_sample_value(METRIC, labels) or 0.0


@pytest.fixture
def configured(add_idp):
    return add_idp()


def test_created_sign_in_is_audited_with_who_and_which_idp(acs, admin, app, configured):
    user = User()
    assert acs.sign_in(user).status_code == 200
    [entry] = signins(admin, app)
    record = acs.state.directory.find("user", "unique", "userName", user.upn)[0]
    assert entry["kind"] == "signin" and entry["idp"] == "entra" and entry["protocol"] == "saml"
    assert entry["outcome"] == "created" and entry["reason"] is None
    assert entry["user_name"] == user.upn and entry["resource_id"] == record.id
    assert entry["path"] == "/sso/saml/entra/acs" and entry["status"] == 200


def test_second_sign_in_is_audited_as_updated(acs, admin, app, configured):
    user = User()
    acs.sign_in(user)
    user.display_name = "Ada King"
    acs.sign_in(user)
    assert [e["outcome"] for e in signins(admin, app)] == ["updated", "created"]


def test_refused_sign_in_is_audited_with_its_reason_and_nothing_of_the_message(
    acs, admin, app, configured, stranger
):
    user = User()
    response = acs.response(
        user, in_response_to=acs.request_id(), key=stranger.key, cert=stranger.cert
    )
    assert acs.post(response).status_code == 403
    [entry] = signins(admin, app)
    assert entry["outcome"] == "refused" and entry["reason"] == "signature"
    assert entry["status"] == 403 and entry["user_name"] is None
    text = orjson.dumps(entry).decode()
    assert user.upn not in text and user.object_id not in text


def test_refusal_after_validation_names_the_user(acs, admin, app, configured, scim):
    from tests.factories import entra_user

    user = User()
    assert scim.post("/Users", json=entra_user(userName=user.upn, active=False)).status_code == 201
    assert acs.sign_in(user).status_code == 403
    [entry] = signins(admin, app)
    assert (entry["reason"], entry["user_name"]) == ("disabled", user.upn)


def test_audit_filters_by_idp_name(acs, admin, app, configured):
    acs.sign_in(User())
    assert len(signins(admin, app)) == 1
    audit_log(app).flush()
    assert len(admin.get("/audit", query_string={"resource": "entra"}).json) == 1
    assert admin.get("/audit", query_string={"resource": "other"}).json == []


def test_sign_ins_are_counted_by_idp_and_outcome(acs, configured):
    before = counted("entra", "created")
    acs.sign_in(User())
    assert counted("entra", "created") == before + 1


def test_refusals_are_counted_by_reason(acs, configured):
    before = counted("entra", "refused", "in_response_to")
    acs.post(acs.response(User(), in_response_to="_never-issued"))
    assert counted("entra", "refused", "in_response_to") == before + 1


def test_an_unknown_idp_adds_no_metric_label(acs, admin, app):
    before = counted("-", "refused", "unknown_idp")
    assert acs.post(acs.response(User()), idp="no-such-idp").status_code == 404
    assert counted("-", "refused", "unknown_idp") == before + 1
    assert (
        REGISTRY.get_sample_value(
            METRIC, {"idp": "no-such-idp", "outcome": "refused", "reason": "unknown_idp"}
        )
        is None
    )
    [entry] = signins(admin, app)
    assert entry["idp"] == "no-such-idp" and entry["reason"] == "unknown_idp"
