"""Request bodies shaped as Microsoft Entra ID sends them, and fast in-process seeding."""

from __future__ import annotations

import uuid

import orjson
import redis

from bridge.directory.records import Directory
from bridge.scim.resource_types import ResourceType
from bridge.scim.service import ResourceService

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def user_name(tag: str) -> str:
    return f"{tag}@bench.contoso.example"


def entra_user(tag: str) -> dict:
    """Entra's "Create User" body (Microsoft's SCIM endpoint tutorial) for a unique ``tag``."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": user_name(tag),
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"{tag}@mail.contoso.example"}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
    }


def entra_group(tag: str) -> dict:
    return {
        "schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA],
        "externalId": str(uuid.uuid4()),
        "displayName": f"Group {tag}",
        "meta": {"resourceType": "Group"},
    }


def patch(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def user_update(n: int) -> dict:
    """Entra's attribute-sync PATCH: capitalised ops, paths and a path-less map, string booleans."""
    return patch(
        {"op": "Replace", "path": "displayName", "value": f"Bench User {n}"},
        {"op": "Replace", "path": "name.familyName", "value": f"Family{n}"},
        {
            "op": "Replace",
            "value": {
                "title": f"Engineer {n % 11}",
                f"{ENTERPRISE}:department": f"Department {n % 7}",
                "active": "False" if n % 2 else "True",
            },
        },
    )


def disable() -> dict:
    return patch({"op": "Replace", "path": "active", "value": "False"})


def add_members(ids: list[str]) -> dict:
    return patch({"op": "Add", "path": "members", "value": [{"value": i} for i in ids]})


def dumps(body: dict) -> bytes:
    return orjson.dumps(body)


class PipelinedDirectory(Directory):
    """The bridge's own write path, with the Lua calls queued on a pipeline.

    ``ResourceService.create`` normalises the body, computes the index entries and builds
    the script request exactly as a POST does; only the round trips are batched. Ids are
    assigned client-side (UUIDv7), so they are known before the batch is sent.
    """

    def __init__(self, client: redis.Redis, prefix: str = "bridge", batch: int = 500) -> None:
        super().__init__(client, prefix)
        self.batch = batch
        self._pipe = client.pipeline(transaction=False)
        self._queued = 0

    def _call(self, script, args: list) -> list:
        script(args=args, client=self._pipe)
        self._queued += 1
        if self._queued >= self.batch:
            self.flush()
        return [b"ok", 1, "", "", 1]

    def flush(self) -> None:
        if not self._queued:
            return
        replies = self._pipe.execute()
        self._queued = 0
        for reply in replies:
            if reply[0] != b"ok":
                raise RuntimeError(f"seeding write rejected: {reply!r}")


def seed_users(
    client: redis.Redis, rtype: ResourceType, tags: list[str], prefix: str = "bridge"
) -> list[str]:
    """Create one user per tag in-process; returns their ids."""
    directory = PipelinedDirectory(client, prefix)
    service = ResourceService(directory, rtype)
    ids = [service.create(entra_user(tag)).record.id for tag in tags]
    directory.flush()
    return ids


def seed_groups(
    client: redis.Redis, rtype: ResourceType, tags: list[str], prefix: str = "bridge"
) -> list[str]:
    directory = PipelinedDirectory(client, prefix)
    service = ResourceService(directory, rtype)
    ids = [service.create(entra_group(tag)).record.id for tag in tags]
    directory.flush()
    return ids
