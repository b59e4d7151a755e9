"""Every SCIM request is in the audit trail, with secrets masked; GET /admin/audit and
``flask --app app audit`` read it with filters."""

from __future__ import annotations

import json
from dataclasses import replace

import redis
from prometheus_client import REGISTRY

from app import create_app
from bridge.observability.audit_log import AuditLog, flush_pending
from bridge.web.observe import audit_log
from tests.conftest import ScimClient
from tests.factories import entra_user, patch


def entries(admin, **query) -> list[dict]:
    response = admin.get("/audit", query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def test_a_scim_request_is_recorded_with_who_what_and_answer(app, scim, admin):
    user = scim.post("/Users", json=entra_user(), headers={"X-Request-Id": "audit-1"}).json
    (entry,) = entries(admin, request_id="audit-1")
    assert entry["method"] == "POST" and entry["path"] == "/scim/v2/Users"
    assert entry["status"] == 201
    assert entry["latency_ms"] > 0
    assert entry["resource_type"] == "Users" and entry["resource_id"] == user["id"]
    assert entry["token_name"] == "tests" and entry["token_id"]
    assert entry["client_ip"] == "127.0.0.1"
    assert json.loads(entry["request_body"])["userName"] == user["userName"]
    assert json.loads(entry["response_body"])["id"] == user["id"]


def test_passwords_are_masked_in_stored_bodies(app, scim, admin, redis_client):
    user = scim.post("/Users", json=entra_user(password="Hunter2-secret")).json
    scim.patch(
        f"/Users/{user['id']}",
        json=patch({"op": "replace", "path": "password", "value": "Other-secret-9"}),
    )
    audit_log(app).flush()
    raw = b"".join(f[b"e"] for _, f in redis_client.xrange("bridge:audit"))
    assert b"Hunter2-secret" not in raw and b"Other-secret-9" not in raw
    assert b'\\"password\\":\\"***\\"' in raw


def test_the_bearer_token_is_never_stored(app, scim, token, redis_client):
    scim.get("/Users")
    audit_log(app).flush()
    assert token.encode() not in b"".join(f[b"e"] for _, f in redis_client.xrange("bridge:audit"))


def test_unauthenticated_requests_are_recorded_without_a_token(app, admin):
    app.test_client().get("/scim/v2/Users", headers={"X-Request-Id": "no-token"})
    (entry,) = entries(admin, request_id="no-token")
    assert entry["status"] == 401 and entry["token_name"] is None


def test_filters_by_status_class_and_exact_status(app, scim, admin):
    scim.post("/Users", json=entra_user())
    scim.get("/Users/01a233e4-6f73-702a-bcd7-db0d7b9b059a")
    assert {e["status"] for e in entries(admin, status="4xx")} == {404}
    assert [e["status"] for e in entries(admin, status="201")] == [201]


def test_filter_by_resource_id_or_type(app, scim, admin):
    user = scim.post("/Users", json=entra_user()).json
    scim.get(f"/Users/{user['id']}")
    scim.get("/Groups")
    by_id = entries(admin, resource=user["id"])
    assert [e["method"] for e in by_id] == ["GET", "POST"]  # newest first
    assert {e["resource_type"] for e in entries(admin, resource="Groups")} == {"Groups"}


def test_filter_by_since(app, scim, admin):
    scim.get("/Users")
    assert entries(admin, since="1h")
    assert entries(admin, since="2999-01-01T00:00:00Z") == []


def test_a_bad_filter_is_a_422_naming_it(admin):
    response = admin.get("/audit", query_string={"since": "yesterday"})
    assert response.status_code == 422
    assert "since" in json.dumps(response.json)
    assert admin.get("/audit", query_string={"status": "abc"}).status_code == 422


def test_the_audit_endpoint_needs_an_admin_token(app, token):
    client = app.test_client()
    assert client.get("/admin/audit").status_code == 401
    scim_token = {"Authorization": f"Bearer {token}"}
    assert client.get("/admin/audit", headers=scim_token).status_code == 401


def test_the_cli_lists_entries_with_a_header_row(app, scim):
    scim.get("/Users", headers={"X-Request-Id": "cli-1"})
    result = app.test_cli_runner().invoke(args=["audit", "--request-id", "cli-1"])
    assert result.exit_code == 0, result.output
    header, line = result.output.strip().splitlines()
    assert header.startswith("at\tmethod\tpath\tstatus")
    assert "\tGET\t/scim/v2/Users\t200\t" in line and line.endswith("cli-1")


def test_the_cli_says_none_when_nothing_matches(app):
    result = app.test_cli_runner().invoke(args=["audit", "--status", "500"])
    assert result.exit_code == 0 and result.output.strip() == "none"


def test_the_cli_refuses_a_bad_since(app):
    result = app.test_cli_runner().invoke(args=["audit", "--since", "soon"])
    assert result.exit_code != 0 and "since" in result.output


def test_the_trail_is_trimmed_to_about_its_maximum(settings, redis_client, token):
    small = create_app(replace(settings, audit_max_entries=10))
    _, secret = small.extensions["bridge"].tokens.create("trim")
    client = ScimClient(small.test_client(), secret)
    for _ in range(400):
        client.get("/ServiceProviderConfig")
    audit_log(small).flush()
    assert redis_client.xlen("bridge:audit") < 400


def test_a_zero_maximum_turns_the_trail_off(settings, redis_client):
    off = create_app(replace(settings, audit_max_entries=0))
    _, secret = off.extensions["bridge"].tokens.create("off")
    ScimClient(off.test_client(), secret).get("/Users")
    audit_log(off).flush()
    assert redis_client.xlen("bridge:audit") == 0


def test_admin_requests_are_not_in_the_scim_trail(app, admin, redis_client):
    admin.get("/status")
    audit_log(app).flush()
    assert redis_client.xlen("bridge:audit") == 0


def test_entries_redis_refuses_are_dropped_and_counted_and_the_writer_goes_on(redis_client):
    def dropped() -> float:
        sample = REGISTRY.get_sample_value("bridge_audit_dropped_total", {"reason": "redis"})
        return sample or 0.0

    before = dropped()
    unreachable = AuditLog(redis.Redis(port=9, socket_connect_timeout=0.2), "gone", 100)
    unreachable.append({"path": "/scim/v2/Users"})
    assert unreachable.flush() == 0
    assert dropped() == before + 1
    working = AuditLog(redis_client, "bridge", 100)
    working.append({"path": "/scim/v2/Groups"})
    assert working.flush() == 1


def test_flush_pending_writes_what_every_audit_log_of_the_process_buffers(redis_client):
    users, groups = AuditLog(redis_client, "one", 100), AuditLog(redis_client, "two", 100)
    users.append({"path": "/scim/v2/Users"})
    groups.append({"path": "/scim/v2/Groups"})
    flush_pending()
    assert (redis_client.xlen("one:audit"), redis_client.xlen("two:audit")) == (1, 1)


def test_the_cli_lists_a_sign_in_entry_which_has_no_latency(app):
    from bridge.web.observe import audit_log as trail

    log = trail(app)
    log.append(
        {
            "at": "2026-12-02T05:00:00.000+00:00",
            "kind": "signin",
            "method": "POST",
            "path": "/sso/saml/entra/acs",
            "status": 403,
            "client_ip": "127.0.0.1",
            "request_id": "signin-1",
        }
    )
    log.flush()
    result = app.test_cli_runner().invoke(args=["audit", "--request-id", "signin-1"])
    assert result.exit_code == 0, result.output
    assert "\tPOST\t/sso/saml/entra/acs\t403\t-\t-\t127.0.0.1\tsignin-1" in result.output
