"""The bridge's per-app state: Redis client, directory, tokens, resource types."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import Flask

from bridge.config import Settings
from bridge.directory import Directory
from bridge.scim.attributes import ResourceType, Schema, build_resource_types
from bridge.tokens import TokenStore

REDIS_SOCKET_TIMEOUT = 5.0
"""Seconds a Redis command may take before the request fails with 503 (Entra retries)."""


@dataclass
class Bridge:
    settings: Settings
    redis: redis.Redis
    directory: Directory
    tokens: TokenStore
    resource_types: dict[str, ResourceType]


def connect(settings: Settings) -> redis.Redis:
    """A pooled Redis client; nothing connects until the first command."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
        health_check_interval=30,
    )


def resource_types_for(settings: Settings) -> dict[str, ResourceType]:
    """Core types plus the custom extension schemas declared in configuration."""
    user_ext, group_ext = [], []
    for doc in settings.extension_schemas:
        target = group_ext if str(doc.get("appliesTo", "User")).lower() == "group" else user_ext
        target.append(Schema.from_scim({k: v for k, v in doc.items() if k != "appliesTo"}))
    return build_resource_types(user_ext, group_ext)


def init_app(app: Flask, settings: Settings) -> Bridge:
    client = connect(settings)
    state = Bridge(
        settings=settings,
        redis=client,
        directory=Directory(client, settings.key_prefix),
        tokens=TokenStore(client, settings.key_prefix),
        resource_types=resource_types_for(settings),
    )
    app.extensions["bridge"] = state
    app.config["BRIDGE_SETTINGS"] = settings
    return state
