"""``meta.location`` without BRIDGE_PUBLIC_URL: the request's own scheme, host and root."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app import create_app
from bridge.scim import current
from tests.factories import entra_user


@pytest.fixture
def own_url_scim(settings, redis_client):
    app = create_app(replace(settings, public_base_url=""))
    token = app.extensions["bridge"].tokens.create("tests")[1]
    yield app, {"Authorization": f"Bearer {token}"}
    app.extensions["bridge"].redis.close()


def test_each_request_locates_resources_under_its_own_host(own_url_scim):
    app, headers = own_url_scim
    client = app.test_client()
    for base in ("http://one.example", "https://two.example:8443", "http://one.example"):
        response = client.post("/scim/v2/Users", json=entra_user(), headers=headers, base_url=base)
        assert response.json["meta"]["location"].startswith(f"{base}/scim/v2/Users/")


def test_the_remembered_base_urls_stay_bounded(own_url_scim, monkeypatch):
    app, headers = own_url_scim
    monkeypatch.setattr(current, "MAX_BASE_URLS", 2)
    client = app.test_client()
    for n in range(5):
        client.post(
            "/scim/v2/Users", json=entra_user(), headers=headers, base_url=f"http://h{n}.example"
        )
    assert 0 < len(app.extensions[current.BASE_URLS_KEY]) <= 2
