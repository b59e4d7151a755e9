"""Fixtures of the relay tests: a live SCIM target and a way to add it as a target."""

from __future__ import annotations

import dataclasses

import pytest

from app import create_app
from tests.delivery.downstream import Downstream
from tests.factories import target_config
from tests.fakes.scim_recorder import ScimRecorder
from tests.live_server import serve
from workers.context import context


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
