"""Fixtures of the delivery tests: the worker's context, a signed webhook target on the test's
receiver, three users, a live SCIM target and a way to add it as a target."""

from __future__ import annotations

import dataclasses

import pytest

from app import create_app
from tests.delivery.downstream import Downstream
from tests.factories import entra_user, target_config
from tests.fakes.scim_recorder import ScimRecorder
from tests.live_server import serve
from workers.context import context


@pytest.fixture
def ctx(app):
    """The worker's context, on the app's services."""
    return context()


@pytest.fixture
def target_id(ctx, receiver) -> str:
    """A signed webhook target posting to the test's receiver."""
    config = target_config(
        name="hook", url=receiver.url + "/events", signing_secret=receiver.secret
    )
    return ctx.targets.create(config)["id"]


@pytest.fixture
def users(scim) -> list[str]:
    """Three users created over SCIM: their ids."""
    ids = []
    for n in range(3):
        response = scim.post("/Users", json=entra_user(userName=f"batch{n}@contoso.com"))
        assert response.status_code == 201
        ids.append(response.json["id"])
    return ids


@pytest.fixture
def downstream(settings, app):
    target_app = create_app(dataclasses.replace(settings, key_prefix="downstream"))
    _, secret = target_app.extensions["bridge"].tokens.create("t")
    recorder = ScimRecorder(target_app)
    with serve(recorder) as base:
        yield Downstream(target_app, recorder, f"{base}/scim/v2", secret)
    target_app.extensions["bridge"].redis.close()


@pytest.fixture
def add_target(app, downstream):
    store = context().targets

    def add(**overrides) -> dict:
        defaults = {
            "name": "downstream",
            "kind": "scim",
            "url": downstream.url,
            "auth": {"type": "bearer", "token": downstream.secret},
        }
        return store.create(target_config(**{**defaults, **overrides}))

    return add
