"""The bridge's object graph, built once per process from its settings.

The web tier (:func:`init_app`) and the workers (``workers.run``) build the same
:class:`Services`: one Redis pool, the directory, tokens, targets, delivery bookkeeping,
the queues, the relay, resync runs and the per-target connectors. Nothing else constructs
these objects, so a new dependency is wired in one place.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from flask import Flask
from redis.driver_info import DriverInfo
from rq import Queue

from bridge.delivery.deliveries import Deliveries
from bridge.delivery.jobs import Jobs, queues_for
from bridge.delivery.relay import Policy, Relay
from bridge.directory.records import Directory
from bridge.directory.tokens import ADMIN, ADMIN_TOKEN_PREFIX, TokenStore
from bridge.graph.runner import GraphRunner
from bridge.graph.runs import Runs
from bridge.runtime import redis_pool
from bridge.runtime.config import Settings
from bridge.scim.attributes import Schema
from bridge.scim.resource_types import ResourceType, build_resource_types
from bridge.targets.base import Connector
from bridge.targets.connectors import build_connector, timeouts
from bridge.targets.model import Target
from bridge.targets.secrets import SecretBox
from bridge.targets.store import TargetStore

ADMIN_TOKENS_HASH = "admin_tokens"
"""Redis hash (under the key prefix) of the admin API's tokens, apart from SCIM's."""

HEALTH_CHECK_SECONDS = 30
"""A pooled connection idle this long is checked with a PING before it is used again, so a
connection that Redis (or a failover) dropped is replaced instead of failing a request."""

EXTENSION_KEY = "bridge"
"""Where :func:`init_app` keeps the services in ``app.extensions``."""


class Connectors:
    """One connector (and HTTP connection pool) per target per process, shared by its
    threads (urllib3's pools are thread-safe); rebuilt when the target's settings change."""

    def __init__(self, settings: Settings) -> None:
        self._timeout = timeouts(settings.target_connect_timeout, settings.target_read_timeout)
        self._built: dict[str, tuple[str, Connector]] = {}
        self._lock = threading.Lock()

    def for_target(self, target: Target) -> Connector:
        """The target's connector, built on first use and when its settings change."""
        stamp = str(target.config.get("updated", ""))
        with self._lock:
            cached = self._built.get(target.id)
            if cached is None or cached[0] != stamp:
                if cached is not None:
                    cached[1].close()  # requests still running on it finish first
                cached = (stamp, build_connector(target, self._timeout))
                self._built[target.id] = cached
            return cached[1]


@dataclass
class Services:
    """Everything a web or worker process works with, sharing one Redis pool."""

    settings: Settings
    redis: redis.Redis
    resource_types: dict[str, ResourceType]
    directory: Directory
    tokens: TokenStore
    admin_tokens: TokenStore
    targets: TargetStore
    deliveries: Deliveries
    queues: dict[str, Queue]
    jobs: Jobs
    relay: Relay
    runs: Runs
    connectors: Connectors = field(repr=False)

    def connector(self, target: Target) -> Connector:
        """The connector that delivers to ``target`` (shared by this process's threads)."""
        return self.connectors.for_target(target)

    def graph_runner(self) -> GraphRunner:
        """Reconciliation with Entra through Microsoft Graph (built per run: cheap)."""
        s = self.settings
        return GraphRunner(self.directory, self.resource_types, self.redis, s.key_prefix, s.graph)


DRIVER_INFO = DriverInfo(lib_version=redis.__version__)
"""What each new connection tells Redis of its client (``CLIENT SETINFO``). Given once here:
left to redis-py, every new connection reads the package's metadata (about 1 ms of CPU),
which a reconnect after a Redis restart or failover multiplies by the pool's size."""


def connect(settings: Settings) -> redis.Redis:
    """A pooled Redis client whose commands time out after BRIDGE_REDIS_TIMEOUT_SECONDS
    (a SCIM request then answers 503, which Entra retries); nothing connects until the
    first command."""
    return redis_pool.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
        driver_info=DRIVER_INFO,
    )


def connect_for_blocking(settings: Settings) -> redis.Redis:
    """A separate pool for RQ's blocking dequeue, which waits for jobs longer than any
    command may take: RQ sets its socket timeout to the dequeue time plus a margin."""
    return redis_pool.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
        driver_info=DRIVER_INFO,
    )


def resource_types_for(settings: Settings) -> dict[str, ResourceType]:
    """Core types plus the custom extension schemas declared in configuration."""
    user_ext: list[Schema] = []
    group_ext: list[Schema] = []
    for doc in settings.extension_schemas:
        target = group_ext if str(doc.get("appliesTo", "User")).lower() == "group" else user_ext
        target.append(Schema.from_scim({k: v for k, v in doc.items() if k != "appliesTo"}))
    return build_resource_types(user_ext, group_ext)


def secret_box(settings: Settings) -> SecretBox | None:
    """The box that encrypts target secrets; None when BRIDGE_SECRET_KEYS is unset."""
    return SecretBox(list(settings.secret_keys)) if settings.secret_keys else None


def build(settings: Settings) -> Services:
    """The object graph for ``settings``; nothing connects to Redis until first used."""
    client = connect(settings)
    prefix = settings.key_prefix
    resource_types = resource_types_for(settings)
    directory = Directory(client, prefix)
    deliveries = Deliveries(client, prefix)
    queues = queues_for(client)
    policy = Policy(
        max_attempts=settings.retry_max_attempts,
        base_delay=settings.retry_base_seconds,
        breaker_threshold=settings.breaker_threshold,
    )
    return Services(
        settings=settings,
        redis=client,
        resource_types=resource_types,
        directory=directory,
        tokens=TokenStore(client, prefix),
        admin_tokens=TokenStore(
            client, prefix, ADMIN_TOKENS_HASH, token_prefix=ADMIN_TOKEN_PREFIX, default_role=ADMIN
        ),
        targets=TargetStore(client, prefix, secret_box(settings), resource_types),
        deliveries=deliveries,
        queues=queues,
        jobs=Jobs(queues, prefix, settings.target_concurrency),
        relay=Relay(directory, deliveries, resource_types, policy),
        runs=Runs(client, prefix),
        connectors=Connectors(settings),
    )


def init_app(app: Flask, settings: Settings) -> Services:
    """Build the services and attach them to ``app`` (``app.extensions["bridge"]``)."""
    services = build(settings)
    app.extensions[EXTENSION_KEY] = services
    app.config["BRIDGE_SETTINGS"] = settings
    return services
