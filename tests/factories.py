"""SCIM payloads shaped as Microsoft Entra ID sends them, with unique defaults."""

from __future__ import annotations

import itertools
import uuid

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTRA_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"

_seq = itertools.count(1)


def entra_user(**overrides) -> dict:
    """The body of Entra's "Create User" request (Microsoft's SCIM endpoint tutorial)."""
    n = next(_seq)
    user = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": f"Test_User_{uuid.uuid4()}",
        "active": True,
        "emails": [
            {"primary": True, "type": "work", "value": f"Test_User_{n}_{uuid.uuid4()}@testuser.com"}
        ],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
    }
    user.update(overrides)
    return user


def entra_group(**overrides) -> dict:
    """The body of Entra's "Create Group" request."""
    group = {
        "schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA],
        "externalId": str(uuid.uuid4()),
        "displayName": f"Group_{uuid.uuid4()}",
        "meta": {"resourceType": "Group"},
    }
    group.update(overrides)
    return group


def patch(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def target_config(**overrides) -> dict:
    """A complete stored target configuration (as TargetStore.create takes it)."""
    config = {
        "name": "target",
        "kind": "webhook",
        "url": "http://127.0.0.1:9/events",
        "auth": {"type": "none"},
        "resources": ["users", "groups"],
        "scope": {"type": "all"},
        "deprovision": "disable",
        "enabled": True,
        "shadow": False,
        "deletion_guard": {"max": 100, "window_seconds": 3600},
    }
    config.update(overrides)
    return config
