"""Security headers on every response; bodiless answers carry no Content-Type."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app import create_app
from tests.admin.conftest import webhook
from tests.factories import entra_user


@pytest.mark.parametrize("path", ["/scim/v2/Users", "/admin/targets", "/healthz", "/nothing"])
def test_every_response_is_nosniff(app, path):
    assert app.test_client().get(path).headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/scim/v2/Users", "/scim/v2/ServiceProviderConfig", "/admin/targets"]
)
def test_scim_and_admin_responses_are_never_stored(app, path):
    assert app.test_client().get(path).headers["Cache-Control"] == "no-store"


def test_hsts_when_the_public_url_is_https(app):
    """The test settings' BRIDGE_PUBLIC_URL is https://bridge.test."""
    assert (
        app.test_client()
        .get("/healthz")
        .headers["Strict-Transport-Security"]
        .startswith("max-age=")
    )


def test_hsts_when_the_request_is_https_and_not_over_plain_http(settings, redis_client):
    app = create_app(replace(settings, public_base_url=""))
    client = app.test_client()
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    assert (
        "Strict-Transport-Security" in client.get("/healthz", base_url="https://localhost").headers
    )
    app.extensions["bridge"].redis.close()


def test_no_server_banner_from_the_app(app):
    assert "Server" not in app.test_client().get("/scim/v2/Users").headers


def test_204_carries_no_content_type(scim):
    user = scim.post("/Users", json=entra_user()).json
    response = scim.delete(f"/Users/{user['id']}")
    assert response.status_code == 204
    assert "Content-Type" not in response.headers
    assert response.data == b""


def test_304_carries_no_content_type(scim):
    user = scim.post("/Users", json=entra_user()).json
    response = scim.get(f"/Users/{user['id']}", headers={"If-None-Match": user["meta"]["version"]})
    assert response.status_code == 304
    assert "Content-Type" not in response.headers


def test_admin_204_carries_no_content_type(admin):
    admin.post("/targets", json=webhook())
    response = admin.delete("/targets/hook")
    assert response.status_code == 204
    assert "Content-Type" not in response.headers
