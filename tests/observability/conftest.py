"""Settings with a metrics token and a short audit trail; captured log lines; targets."""

from __future__ import annotations

import io
import json

import pytest

from bridge.observability import logs
from bridge.runtime.config import Settings
from tests.factories import entra_user

METRICS_TOKEN = "metrics-token-for-tests"


@pytest.fixture
def settings(settings: Settings, monkeypatch) -> Settings:
    monkeypatch.setenv("BRIDGE_METRICS_TOKEN", METRICS_TOKEN)
    monkeypatch.setenv("BRIDGE_AUDIT_MAX_ENTRIES", "1000")
    return Settings.from_env()


class LogLines:
    """What the bridge's own handler writes, one parsed JSON object per line."""

    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def all(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def attempts(self) -> list[dict]:
        """Delivery attempt lines."""
        return [e for e in self.all() if e.get("logger") == "bridge.delivery.relay"]


@pytest.fixture
def log_lines(app):
    """JSON log lines from now on (the app installed its handler; this one replaces it)."""
    buffer = io.StringIO()
    logs.configure("json", "INFO", stream=buffer)
    yield LogLines(buffer)
    logs.configure("json", "INFO")


@pytest.fixture
def hook(admin, receiver):
    """A webhook target at the live receiver, added through the admin API."""

    def add(**overrides) -> dict:
        body = {
            "name": "hook",
            "kind": "webhook",
            "url": receiver.url + "/events",
            "signing_secret": receiver.secret,
            **overrides,
        }
        response = admin.post("/targets", json=body)
        assert response.status_code == 201, response.json
        return response.json

    return add


@pytest.fixture
def create_user(scim):
    def create(request_id: str | None = None, **overrides) -> dict:
        headers = {"X-Request-Id": request_id} if request_id else {}
        response = scim.post("/Users", json=entra_user(**overrides), headers=headers)
        assert response.status_code == 201, response.json
        return response.json

    return create
