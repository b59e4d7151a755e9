"""Shared fixtures: a private Redis server, the app, an authenticated SCIM client."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from app import create_app
from bridge.observability import audit_log
from bridge.runtime.config import Settings
from bridge.targets.secrets import SecretBox
from bridge.targets.signing import new_secret
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.live_server import serve
from tests.pipeline import Pipeline
from tests.redis_server import RedisServer
from workers.context import install


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    audit_log.flush_pending()  # not at exit, when this Redis is gone
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


SECRET_KEY = SecretBox.generate_key()
"""One Fernet key for the whole session: the app and the workers must share it."""


@pytest.fixture
def settings(redis_server: RedisServer, monkeypatch) -> Settings:
    """The app's settings; the same values are put in the environment for workers."""
    env = {
        "REDIS_URL": redis_server.url,
        "BRIDGE_PUBLIC_URL": "https://bridge.test",
        "BRIDGE_SECRET_KEYS": SECRET_KEY,
        "BRIDGE_RETRY_BASE_SECONDS": "0",
        "BRIDGE_RETRY_MAX_ATTEMPTS": "4",
        "BRIDGE_BREAKER_THRESHOLD": "1000",
    }
    for name in list(os.environ):
        if name.startswith("BRIDGE_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis):
    """The app, whose services the test's in-process jobs use too (as a worker's would)."""
    application = create_app(settings)
    application.config["TESTING"] = True
    install(application.extensions["bridge"])
    yield application
    install(None)
    application.extensions["bridge"].redis.close()


@pytest.fixture
def token(app) -> str:
    _, secret = app.extensions["bridge"].tokens.create("tests")
    return secret


class ScimClient:
    """The Flask test client with a bearer token and SCIM media type on every request."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, json=None, headers=None, **kwargs):
        all_headers = dict(self.headers)
        all_headers.update(headers or {})
        if json is not None:
            kwargs["json"] = json
            all_headers.setdefault("Content-Type", "application/scim+json")
        return self.client.open(f"/scim/v2{path}", method=method, headers=all_headers, **kwargs)

    def get(self, path, **kw):
        return self._call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self._call("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self._call("PUT", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self._call("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self._call("DELETE", path, **kw)


@pytest.fixture
def scim(app, token) -> ScimClient:
    return ScimClient(app.test_client(), token)


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
    """A live webhook receiver that verifies signatures (``receiver.url``)."""
    hook = WebhookReceiver(new_secret())
    with serve(hook) as url:
        hook.url = url
        yield hook


@pytest.fixture
def pipeline(app) -> Pipeline:
    """The real dispatcher and RQ workers, run in-process until idle."""
    return Pipeline()
