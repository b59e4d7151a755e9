"""Build the connector that reaches a target: its HTTP client, auth and protocol."""

from __future__ import annotations

import httpx

from bridge.targets.auth import http_client
from bridge.targets.base import Connector
from bridge.targets.model import Target
from bridge.targets.webhook import WebhookConnector


def timeouts(connect: float, read: float) -> httpx.Timeout:
    """Per-request limits towards a target: a slow or dead one fails fast and is retried later."""
    return httpx.Timeout(read, connect=connect)


def build_connector(target: Target, timeout: httpx.Timeout) -> Connector:
    """A connector with its own connection pool, authenticated as the target requires."""
    client = http_client(target.auth, timeout)
    if target.kind == "webhook":
        return WebhookConnector(target.url, target.signing_secret or "", client)
    from bridge.targets.scim_client import ScimConnector

    return ScimConnector(target.url, client)
