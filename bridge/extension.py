"""The bridge's per-app state: Redis client, directory, tokens, targets, deliveries, queues."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask
from rq import Queue

from bridge.config import Settings
from bridge.deliveries import Deliveries
from bridge.directory import Directory
from bridge.jobs import Jobs, queues_for
from bridge.scim.attributes import ResourceType, Schema, build_resource_types
from bridge.secrets import SecretBox
from bridge.targets.store import TargetStore
from bridge.tokens import ADMIN_TOKEN_PREFIX, TokenStore

ADMIN_TOKENS_HASH = "admin_tokens"
"""Redis hash (under the key prefix) of the admin API's tokens, apart from SCIM's."""


@dataclass
class Bridge:
    settings: Settings
    redis: redis.Redis
    directory: Directory
    tokens: TokenStore
    resource_types: dict[str, ResourceType]
    admin_tokens: TokenStore
    targets: TargetStore
    deliveries: Deliveries
    queues: dict[str, Queue]
    jobs: Jobs


HEALTH_CHECK_SECONDS = 30
"""A pooled connection idle this long is checked with a PING before it is used again, so a
connection that Redis (or a failover) dropped is replaced instead of failing a request."""


def connect(settings: Settings) -> redis.Redis:
    """A pooled Redis client whose commands time out after BRIDGE_REDIS_TIMEOUT_SECONDS
    (a SCIM request then answers 503, which Entra retries); nothing connects until the
    first command."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
    )


def connect_for_blocking(settings: Settings) -> redis.Redis:
    """A separate pool for RQ's blocking dequeue, which waits for jobs longer than any
    command may take: RQ sets its socket timeout to the dequeue time plus a margin."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
    )


def resource_types_for(settings: Settings) -> dict[str, ResourceType]:
    """Core types plus the custom extension schemas declared in configuration."""
    user_ext, group_ext = [], []
    for doc in settings.extension_schemas:
        target = group_ext if str(doc.get("appliesTo", "User")).lower() == "group" else user_ext
        target.append(Schema.from_scim({k: v for k, v in doc.items() if k != "appliesTo"}))
    return build_resource_types(user_ext, group_ext)


def secret_box(settings: Settings) -> SecretBox | None:
    """The box that encrypts target secrets; None when BRIDGE_SECRET_KEYS is unset."""
    return SecretBox(list(settings.secret_keys)) if settings.secret_keys else None


def init_app(app: Flask, settings: Settings) -> Bridge:
    client = connect(settings)
    resource_types = resource_types_for(settings)
    prefix = settings.key_prefix
    queues = queues_for(client)
    state = Bridge(
        settings=settings,
        redis=client,
        directory=Directory(client, prefix),
        tokens=TokenStore(client, prefix),
        resource_types=resource_types,
        admin_tokens=TokenStore(client, prefix, ADMIN_TOKENS_HASH, token_prefix=ADMIN_TOKEN_PREFIX),
        targets=TargetStore(client, prefix, secret_box(settings), resource_types),
        deliveries=Deliveries(client, prefix),
        queues=queues,
        jobs=Jobs(queues, prefix, settings.target_concurrency),
    )
    app.extensions["bridge"] = state
    app.config["BRIDGE_SETTINGS"] = settings
    return state
