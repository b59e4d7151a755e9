"""Redis memory per user: load N Entra-shaped users through the bridge's write path."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import redis

from bench import entra
from bridge.runtime.embedded_redis import EmbeddedRedis
from bridge.scim.resource_types import build_resource_types

PREFIX = "bridge"


def _load(url: str, tags: list[str]) -> None:
    client = redis.Redis.from_url(url)
    users = build_resource_types([], [])["User"]
    for start in range(0, len(tags), 5000):
        entra.seed_users(client, users, tags[start : start + 5000], PREFIX)
    client.close()


def _memory(client: redis.Redis) -> dict:
    info = client.info("memory")
    return {k: info[k] for k in ("used_memory", "used_memory_dataset", "mem_aof_buffer")}


def _wait_for_aof_rewrite(client: redis.Redis, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.2)


def _key_usage(client: redis.Redis, key: str) -> int:
    return int(client.memory_usage(key, samples=0) or 0)


def measure(data_dir: Path, users: int, processes: int = 2) -> dict:
    """Load ``users`` users into a fresh AOF Redis; memory figures per user."""
    server = EmbeddedRedis(data_dir, appendonly=True)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        _wait_for_aof_rewrite(client)
        before = _memory(client)
        tags = [f"mem-{i:07d}" for i in range(users)]
        shards = [tags[i::processes] for i in range(processes)]
        started = time.monotonic()
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_load, args=(server.url, shard)) for shard in shards]
        try:
            for p in procs:
                p.start()
            for p in procs:
                p.join(600)
                if p.exitcode != 0:
                    raise RuntimeError(f"memory load process failed ({p.exitcode})")
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join(5)
        load_seconds = time.monotonic() - started
        _wait_for_aof_rewrite(client)
        after = _memory(client)
        count = client.zcard(f"{PREFIX}:users")
        if count != users:
            raise RuntimeError(f"expected {users} users, found {count}")
        sample_id = client.zrange(f"{PREFIX}:users", 0, 0)[0].decode()
        parts = {
            "records": None,
            "userName index": _key_usage(client, f"{PREFIX}:idx:user:userName"),
            "externalId index": _key_usage(client, f"{PREFIX}:idx:user:externalId"),
            "creation order zset": _key_usage(client, f"{PREFIX}:users"),
            "change stream": _key_usage(client, f"{PREFIX}:changes"),
        }
        record = _key_usage(client, f"{PREFIX}:user:{sample_id}")
        email_keys = client.keys(f"{PREFIX}:idx:user:email:*")[:100]
        email = sum(_key_usage(client, k.decode()) for k in email_keys) / max(1, len(email_keys))
        parts["records"] = record * users
        parts["email index (1 set per address)"] = int(email * users)
        delta = after["used_memory"] - before["used_memory"]
        return {
            "users": users,
            "load_seconds": round(load_seconds, 2),
            "users_per_second_loaded": round(users / load_seconds),
            "used_memory_before": before["used_memory"],
            "used_memory_after": after["used_memory"],
            "bytes_per_user": round(delta / users),
            "dataset_bytes_per_user": round(
                (after["used_memory_dataset"] - before["used_memory_dataset"]) / users
            ),
            "breakdown_bytes_per_user": {k: round(v / users) for k, v in parts.items()},
            "sample_record_bytes": record,
            "sample_record_value_length": client.strlen(f"{PREFIX}:user:{sample_id}"),
        }
    finally:
        server.stop()
