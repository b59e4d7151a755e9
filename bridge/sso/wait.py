"""Holding a sign-in's redirect until the targets in scope hold the new user.

Optional per IdP (``wait_seconds``, 0: off): the user then lands in an app that already
knows them. Only a created user is waited for, and only on enabled, non-shadow targets
that take users and whose scope takes this one; a target counts as done once its
delivery state says the user is present with nothing unconfirmed (``maybe``). After
``wait_seconds`` the browser goes on regardless: the delivery carries on in the
background.
"""

from __future__ import annotations

import time
from typing import Any

from bridge.delivery.deliveries import Deliveries
from bridge.directory.records import Directory
from bridge.scim.filter_eval import matches
from bridge.scim.resource_types import ResourceType
from bridge.targets.model import Target
from bridge.targets.store import TargetStore

POLL_SECONDS = 0.02
"""How often the delivery states are read while waiting."""


def targets_for(
    targets: TargetStore, record_groups: list[str], resource: dict[str, Any], rtype: ResourceType
) -> list[Target]:
    """The targets that should receive this user."""
    out = []
    for target in targets.current().values():
        if not target.enabled or target.shadow or not target.receives("user"):
            continue
        scope = target.scope["type"]
        if scope == "groups" and not target.scope_groups.intersection(record_groups):
            continue
        scope_filter = target.scope_filter
        if scope == "filter" and (
            scope_filter is None or not matches(scope_filter, resource, rtype)
        ):
            continue
        out.append(target)
    return out


def wait_for_targets(
    directory: Directory,
    deliveries: Deliveries,
    targets: TargetStore,
    rtype: ResourceType,
    user_id: str,
    timeout: float,
) -> bool:
    """Whether every target in scope holds the user within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    record = directory.get("user", user_id, groups=True)
    waiting = targets_for(targets, record.groups or [], record.as_resource(), rtype)
    while waiting:
        waiting = [t for t in waiting if not _holds(deliveries, t, user_id)]
        if not waiting:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def _holds(deliveries: Deliveries, target: Target, user_id: str) -> bool:
    state = deliveries.states(target.id, "user", [user_id]).get(user_id)
    return bool(state and state.get("present") and not state.get("maybe"))
