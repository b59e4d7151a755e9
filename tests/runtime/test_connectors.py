"""One connector per target per process: reused while the target is unchanged, built
again (and the old one's pooled connections closed) when its settings change."""

from __future__ import annotations

from bridge.runtime.config import Settings
from bridge.runtime.services import Connectors
from bridge.scim.resource_types import build_resource_types
from bridge.targets.model import Target
from bridge.targets.webhook import WebhookConnector
from tests.factories import target_config

RESOURCE_TYPES = build_resource_types([], [])


def target(updated: str) -> Target:
    config = target_config(id="t1", updated=updated, signing_secret="whsec_x")
    return Target.from_config(config, RESOURCE_TYPES)


def test_an_unchanged_target_keeps_its_connector():
    connectors = Connectors(Settings())
    first = connectors.for_target(target("2026-12-01T00:00:00Z"))
    assert connectors.for_target(target("2026-12-01T00:00:00Z")) is first


def test_a_changed_target_gets_a_new_connector_and_the_old_pools_close():
    connectors = Connectors(Settings())
    first = connectors.for_target(target("2026-12-01T00:00:00Z"))
    assert isinstance(first, WebhookConnector)
    first.http.pool.connection_from_url("http://127.0.0.1:9/")  # a pool, as after a request
    second = connectors.for_target(target("2026-12-02T00:00:00Z"))
    assert second is not first
    assert len(first.http.pool.pools) == 0
