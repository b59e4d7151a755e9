"""Bodies for the admin API tests (the admin client, receiver and pipeline are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from bridge.targets.signing import new_secret
from tests.fakes.webhook_receiver import WebhookReceiver


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
