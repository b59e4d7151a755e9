"""Creating, reading, changing and removing targets through /admin/targets."""

from __future__ import annotations

import dataclasses

import orjson

from app import create_app
from bridge.targets.signing import new_secret
from tests.admin.conftest import webhook
from tests.conftest import AdminClient

BEARER = "tok-plaintext-4f9c"
CLIENT_SECRET = "oauth-plaintext-77ab"


def scim_target(**overrides) -> dict:
    body = {
        "name": "crm",
        "kind": "scim",
        "url": "https://crm.example.com/scim/v2",
        "auth": {"type": "bearer", "token": BEARER},
    }
    body.update(overrides)
    return body


def test_create_returns_201_and_the_public_view(admin):
    response = admin.post("/targets", json=webhook(name="hook"))
    assert response.status_code == 201
    target = response.json
    assert target["name"] == "hook"
    assert target["kind"] == "webhook"
    assert target["resources"] == ["users", "groups"]
    assert target["scope"] == {"type": "all"}
    assert target["status"] == {
        "breaker": "closed",
        "failures": 0,
        "opened_at": None,
        "dead": 0,
        "held": 0,
        "stats": {},
    }
    assert "signing_secret" not in target


def test_list_shows_every_target_by_name(admin):
    admin.post("/targets", json=webhook(name="b-hook"))
    admin.post("/targets", json=scim_target(name="a-crm"))
    response = admin.get("/targets")
    assert response.status_code == 200
    assert [t["name"] for t in response.json] == ["a-crm", "b-hook"]
    assert all("status" in t for t in response.json)


def test_show_finds_a_target_by_id_or_name(admin):
    created = admin.post("/targets", json=scim_target()).json
    by_id = admin.get(f"/targets/{created['id']}")
    by_name = admin.get("/targets/CRM")
    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json == by_name.json


def test_unknown_target_is_404(admin):
    response = admin.get("/targets/nope")
    assert response.status_code == 404
    assert response.json["message"] == "no target 'nope'"


def test_patch_changes_only_the_fields_given(admin):
    created = admin.post("/targets", json=scim_target(shadow=True)).json
    response = admin.patch("/targets/crm", json={"enabled": False, "name": "crm-eu"})
    assert response.status_code == 200
    changed = response.json
    assert (changed["enabled"], changed["name"], changed["shadow"]) == (False, "crm-eu", True)
    assert changed["url"] == created["url"]
    assert admin.get("/targets/crm").status_code == 404
    assert admin.get("/targets/crm-eu").status_code == 200


def test_patch_keeps_secrets_not_sent(app, admin):
    admin.post("/targets", json=scim_target())
    response = admin.patch("/targets/crm", json={"auth": {"type": "bearer"}})
    assert response.status_code == 200
    stored = app.extensions["bridge"].targets.all()[0]
    assert (stored.auth["type"], stored.auth["token"]) == ("bearer", BEARER)


def test_patch_that_leaves_the_target_incomplete_is_422(admin):
    admin.post("/targets", json=scim_target(auth={"type": "none"}))
    response = admin.patch("/targets/crm", json={"auth": {"type": "bearer"}})
    assert response.status_code == 422
    assert response.json["errors"] == {"auth": {"token": ["a bearer token is required"]}}


def test_delete_removes_the_target_and_its_bookkeeping(app, admin, redis_client):
    created = admin.post("/targets", json=webhook()).json
    deliveries = app.extensions["bridge"].deliveries
    deliveries.bury(created["id"], "user", "u1", "boom", 4)
    response = admin.delete("/targets/hook")
    assert response.status_code == 204
    assert admin.get("/targets/hook").status_code == 404
    assert redis_client.keys(f"bridge:target:{created['id']}:*") == []


def test_secrets_are_never_returned(admin):
    signing = new_secret()
    oauth = {
        "type": "oauth2",
        "token_url": "https://login.example.com/token",
        "client_id": "bridge",
        "client_secret": CLIENT_SECRET,
    }
    bodies = [
        admin.post("/targets", json=scim_target()).get_data(),
        admin.post("/targets", json=webhook(name="h", signing_secret=signing)).get_data(),
        admin.post("/targets", json=scim_target(name="o", auth=oauth)).get_data(),
        admin.get("/targets").get_data(),
        admin.get("/targets/o").get_data(),
        admin.patch("/targets/crm", json={"auth": {"type": "bearer", "token": BEARER}}).get_data(),
        admin.patch("/targets/h", json={"signing_secret": signing}).get_data(),
    ]
    for body in bodies:
        for secret in (BEARER, CLIENT_SECRET, signing):
            assert secret.encode() not in body
        assert b'"token"' not in body and b"client_secret" not in body


def test_secrets_are_stored_encrypted(admin, redis_client):
    signing = new_secret()
    admin.post("/targets", json=scim_target())
    admin.post("/targets", json=webhook(signing_secret=signing))
    raw = b"".join(redis_client.hvals("bridge:targets"))
    assert BEARER.encode() not in raw
    assert signing.encode() not in raw
    stored = [orjson.loads(v) for v in redis_client.hvals("bridge:targets")]
    assert all(s.get("signing_secret", "gAAAA").startswith("gAAAA") for s in stored)


def test_duplicate_name_is_409(admin):
    admin.post("/targets", json=webhook(name="Hook"))
    response = admin.post("/targets", json=webhook(name="hook"))
    assert response.status_code == 409
    assert "hook" in response.json["message"].lower()


def test_bad_mapping_is_422_with_the_field(admin):
    response = admin.post("/targets", json=webhook(user_mapping={"login": "noSuchAttribute"}))
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["user_mapping"]


def test_bad_scope_filter_is_422_with_the_field(admin):
    for bad in ('department eq "IT" and', 'noSuchAttribute eq "x"'):
        body = webhook(scope={"type": "filter", "filter": bad})
        response = admin.post("/targets", json=body)
        assert response.status_code == 422, bad
        assert list(response.json["errors"]["scope"]) == ["filter"]


def test_webhook_without_signing_secret_is_422(admin):
    body = webhook()
    del body["signing_secret"]
    response = admin.post("/targets", json=body)
    assert response.status_code == 422
    assert "signing_secret" in response.json["errors"]["json"]


def test_invalid_fields_are_422_with_messages(admin):
    response = admin.post("/targets", json=webhook(url="not a url", kind="ftp"))
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"url", "kind"}


def test_without_secret_keys_secrets_are_refused_with_a_clear_409(settings, redis_client):
    app = create_app(dataclasses.replace(settings, secret_keys=()))
    _, token = app.extensions["bridge"].admin_tokens.create("t")
    admin = AdminClient(app.test_client(), token)
    response = admin.post("/targets", json=webhook())
    assert response.status_code == 409
    assert "BRIDGE_SECRET_KEYS" in response.json["message"]
    assert admin.post("/targets", json=scim_target(auth={"type": "none"})).status_code == 201
