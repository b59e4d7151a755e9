"""Fixtures of the admin API tests: an admin client, a live webhook receiver, the pipeline."""

from __future__ import annotations

import pytest

from bridge.targets.signing import new_secret
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.live_server import serve
from tests.pipeline import Pipeline


class AdminClient:
    """The Flask test client with an admin bearer token on every request."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def open(self, method: str, path: str, **kwargs):
        return self.client.open(f"/admin{path}", method=method, headers=self.headers, **kwargs)

    def get(self, path, **kw):
        return self.open("GET", path, **kw)

    def post(self, path, **kw):
        return self.open("POST", path, **kw)

    def patch(self, path, **kw):
        return self.open("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.open("DELETE", path, **kw)


@pytest.fixture
def admin_token(app) -> str:
    _, secret = app.extensions["bridge"].admin_tokens.create("tests")
    return secret


@pytest.fixture
def admin(app, admin_token) -> AdminClient:
    return AdminClient(app.test_client(), admin_token)


@pytest.fixture
def receiver():
    hook = WebhookReceiver(new_secret())
    with serve(hook) as url:
        hook.url = url
        yield hook


@pytest.fixture
def pipeline(app) -> Pipeline:
    return Pipeline()


def webhook(receiver: WebhookReceiver | None = None, **overrides) -> dict:
    """An admin API body for a webhook target (at ``receiver`` when given)."""
    body = {
        "name": "hook",
        "kind": "webhook",
        "url": (receiver.url if receiver else "http://127.0.0.1:9") + "/events",
        "signing_secret": receiver.secret if receiver else new_secret(),
    }
    body.update(overrides)
    return body


@pytest.fixture
def add_webhook(admin, receiver):
    """Add a webhook target at the live receiver through the API; returns its view."""

    def add(**overrides) -> dict:
        response = admin.post("/targets", json=webhook(receiver, **overrides))
        assert response.status_code == 201, response.json
        return response.json

    return add
