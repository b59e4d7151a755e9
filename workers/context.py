"""What a worker process needs, built once per process from the environment."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from rq import Queue

from bridge.config import Settings
from bridge.deliveries import Deliveries
from bridge.directory import Directory
from bridge.extension import connect, resource_types_for
from bridge.jobs import queues_for
from bridge.relay import Policy, Relay
from bridge.secrets import SecretBox
from bridge.targets.auth import http_client
from bridge.targets.base import Connector
from bridge.targets.model import Target
from bridge.targets.store import TargetStore
from bridge.targets.webhook import WebhookConnector


@dataclass
class Context:
    settings: Settings
    redis: redis.Redis
    directory: Directory
    deliveries: Deliveries
    targets: TargetStore
    relay: Relay
    queues: dict[str, Queue]
    _connectors: dict[str, tuple[str, Connector]] = field(default_factory=dict)

    def connector(self, target: Target) -> Connector:
        """One connector (and HTTP connection pool) per target per process."""
        stamp = target.config.get("updated", "")
        cached = self._connectors.get(target.id)
        if cached is None or cached[0] != stamp:
            self._connectors[target.id] = (stamp, build_connector(target))
        return self._connectors[target.id][1]


def build_connector(target: Target) -> Connector:
    client = http_client(target.auth)
    if target.kind == "webhook":
        return WebhookConnector(target.url, target.signing_secret or "", client)
    from bridge.targets.scim import ScimConnector

    return ScimConnector(target.url, client)


def build(settings: Settings) -> Context:
    client = connect(settings)
    resource_types = resource_types_for(settings)
    secrets = SecretBox(list(settings.secret_keys)) if settings.secret_keys else None
    directory = Directory(client, settings.key_prefix)
    deliveries = Deliveries(client, settings.key_prefix)
    policy = Policy(
        max_attempts=settings.retry_max_attempts,
        base_delay=settings.retry_base_seconds,
        breaker_threshold=settings.breaker_threshold,
    )
    return Context(
        settings=settings,
        redis=client,
        directory=directory,
        deliveries=deliveries,
        targets=TargetStore(client, settings.key_prefix, secrets, resource_types),
        relay=Relay(directory, deliveries, resource_types, policy),
        queues=queues_for(client),
    )


_contexts: dict[str, Context] = {}
_lock = threading.Lock()


def context() -> Context:
    """The process's context for the current environment's settings."""
    settings = Settings.from_env()
    key = repr(settings)  # settings hold dicts (extension schemas): not hashable
    with _lock:
        if key not in _contexts:
            _contexts[key] = build(settings)
        return _contexts[key]
