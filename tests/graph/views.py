"""What the tests look at: the directory through SCIM, and the Redis keyspace."""

from __future__ import annotations

import redis

RUN_RECORDS = b"bridge:resync:"
"""Prefix of the run records (bridge/graph/runs.py), the only keys a dry run may write."""


def users(scim) -> dict[str, dict]:
    """Directory users by userName."""
    return {
        u["userName"]: u for u in scim.get("/Users", query_string={"count": 1000}).json["Resources"]
    }


def groups(scim) -> dict[str, dict]:
    """Directory groups by displayName."""
    return {
        g["displayName"]: g
        for g in scim.get("/Groups", query_string={"count": 1000}).json["Resources"]
    }


def member_names(scim, group: str) -> set[str]:
    """The userNames of a directory group's members."""
    by_id = {u["id"]: name for name, u in users(scim).items()}
    return {by_id[m["value"]] for m in groups(scim)[group].get("members", [])}


AUDIT = b"bridge:audit"
"""The SCIM audit trail, written in the background after each request."""


def keyspace(client: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key's serialized value (DUMP), apart from the run records and the audit trail."""
    return {
        key: client.dump(key)
        for key in client.scan_iter()
        if not key.startswith(RUN_RECORDS) and key != AUDIT
    }
