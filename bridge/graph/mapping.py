"""Microsoft Graph objects as SCIM attributes, per Entra's default provisioning mapping.

A mapping is ``{SCIM attribute path: Graph property}``. The defaults follow the attribute
mapping Entra's provisioning service applies to a SCIM application; an operator can
override or extend them (BRIDGE_GRAPH_USER_MAPPING / BRIDGE_GRAPH_GROUP_MAPPING, JSON).
``manager`` is special: Graph gives the manager's object id, the directory wants the
manager's id in the bridge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

DEFAULT_USER_MAPPING: dict[str, str] = {
    "userName": "userPrincipalName",
    "externalId": "mailNickname",
    "active": "accountEnabled",
    "displayName": "displayName",
    "title": "jobTitle",
    "name.givenName": "givenName",
    "name.familyName": "surname",
    'emails[type eq "work"].value': "mail",
    f"{ENTERPRISE}:department": "department",
    f"{ENTERPRISE}:employeeNumber": "employeeId",
    f"{ENTERPRISE}:manager": "manager",
}
"""Entra's default user attribute mapping for SCIM applications."""

DEFAULT_GROUP_MAPPING: dict[str, str] = {
    "displayName": "displayName",
    "externalId": "id",
}
"""Entra's default group mapping: ``objectId`` → ``externalId``; members are separate."""


@dataclass(frozen=True)
class Config:
    """What reconciliation maps and how it matches directory records to Entra objects."""

    user_mapping: dict[str, str]
    group_mapping: dict[str, str]
    matching_attribute: str = "userName"


def graph_select(mapping: dict[str, str], *extra: str) -> list[str]:
    """The Graph properties to ``$select``: only what is mapped, plus ``id``."""
    wanted = {"id", *mapping.values(), *extra}
    return sorted(wanted)


def mapped_values(
    graph_object: dict, mapping: dict[str, str], manager_id: str | None = None
) -> dict[str, Any]:
    """``{SCIM path: value}`` for one Graph object; None where Graph has no value, and no
    entry for a property the object does not carry.

    ``manager_id`` is the bridge id of the object's manager, when it has one.
    """
    out: dict[str, Any] = {}
    for path, prop in mapping.items():
        if prop not in graph_object:
            continue  # a delta round may carry only the properties that changed
        if prop == "manager":
            out[path] = {"value": manager_id} if manager_id else None
            continue
        value = graph_object.get(prop)
        out[path] = None if value in ("", []) else value
    return out


def as_resource(values: dict[str, Any], schema: str) -> dict:
    """A SCIM resource body from ``{path: value}`` (paths as in the mappings above)."""
    body: dict[str, Any] = {"schemas": [schema]}
    for path, value in values.items():
        if value is None:
            continue
        if path.startswith("urn:"):
            urn, _, attr = path.rpartition(":")
            body.setdefault(urn, {})[attr] = value
            if urn not in body["schemas"]:
                body["schemas"].append(urn)
        elif "[" in path:
            attr, _, rest = path.partition("[")
            condition, _, sub = rest.partition("].")
            key, _, literal = condition.partition(" eq ")
            element = {key.strip(): literal.strip().strip('"'), sub: value}
            body.setdefault(attr, []).append(element)
        elif "." in path:
            attr, _, sub = path.partition(".")
            body.setdefault(attr, {})[sub] = value
        else:
            body[path] = value
    return body


def manager_of(graph_user: dict) -> str | None:
    """The Graph object id of a user's manager, from ``manager`` or ``manager@odata.bind``."""
    manager = graph_user.get("manager")
    if isinstance(manager, dict):
        return manager.get("id")
    return None


def load_config(settings) -> Config:
    """The mappings in force: defaults, overridden by the configured JSON files.

    A file maps SCIM paths to Graph properties; a path mapped to null is dropped.
    """
    user = _merged(DEFAULT_USER_MAPPING, getattr(settings, "user_mapping_file", None))
    group = _merged(DEFAULT_GROUP_MAPPING, getattr(settings, "group_mapping_file", None))
    return Config(user, group, getattr(settings, "matching_attribute", "userName") or "userName")


def _merged(defaults: dict[str, str], path: str | None) -> dict[str, str]:
    merged = dict(defaults)
    if path:
        overrides = json.loads(Path(path).read_text())
        for key, prop in overrides.items():
            if prop is None:
                merged.pop(key, None)
            else:
                merged[key] = prop
    return merged
