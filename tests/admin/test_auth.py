"""Every /admin endpoint needs an admin token; SCIM tokens are not admin tokens."""

from __future__ import annotations

import pytest

ENDPOINTS = [
    ("GET", "/admin/targets"),
    ("POST", "/admin/targets"),
    ("GET", "/admin/targets/x"),
    ("PATCH", "/admin/targets/x"),
    ("DELETE", "/admin/targets/x"),
    ("POST", "/admin/targets/x/test"),
    ("POST", "/admin/targets/x/sync"),
    ("GET", "/admin/targets/x/deliveries"),
    ("GET", "/admin/targets/x/failed"),
    ("POST", "/admin/targets/x/failed/replay"),
    ("GET", "/admin/targets/x/held"),
    ("POST", "/admin/targets/x/held/approve"),
    ("POST", "/admin/targets/x/held/reject"),
    ("GET", "/admin/openapi.json"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_request_without_token_is_401_json(app, method, path):
    response = app.test_client().open(path, method=method, json={})
    assert response.status_code == 401
    assert response.json["code"] == 401
    assert response.json["status"] == "Unauthorized"
    assert "admin bearer token" in response.json["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_scim_token_is_rejected(app, token):
    response = app.test_client().get("/admin/targets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json["message"] == "the bearer token is not a valid admin token"


def test_admin_token_is_not_a_scim_token(app, admin_token):
    response = app.test_client().get(
        "/scim/v2/Users", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 401
    assert response.mimetype == "application/scim+json"


def test_admin_token_is_accepted(admin):
    response = admin.get("/targets")
    assert response.status_code == 200
    assert response.json == []


def test_openapi_document_is_served_to_admins(admin):
    spec = admin.get("/openapi.json").json
    assert "/admin/targets/{target}/held/approve" in spec["paths"]
    assert spec["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"


def test_unknown_admin_path_is_a_json_404(admin):
    response = admin.get("/nothing-here")
    assert response.status_code == 404
    assert response.json["code"] == 404


def test_scim_errors_keep_their_scim_body(app):
    response = app.test_client().get("/scim/v2/Users")
    assert response.status_code == 401
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
