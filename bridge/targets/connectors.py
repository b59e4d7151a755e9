"""Build the connector that reaches a target: its HTTP client, auth and protocol."""

from __future__ import annotations

from bridge.targets.base import Connector
from bridge.targets.http import Timeouts, target_http
from bridge.targets.model import Target
from bridge.targets.webhook import WebhookConnector


def timeouts(connect: float, read: float) -> Timeouts:
    """Per-request limits towards a target: a slow or dead one fails fast and is retried later."""
    return Timeouts(connect=connect, read=read)


def build_connector(target: Target, timeout: Timeouts) -> Connector:
    """A connector with its own connection pool, authenticated as the target requires."""
    http = target_http(target.auth, timeout)
    if target.kind == "webhook":
        return WebhookConnector(target.url, target.signing_secret or "", http)
    from bridge.targets.scim_client import ScimConnector

    return ScimConnector(target.url, http)
