"""The convergence invariant: each target holds the directory projected through its settings.

For one target, after the bridge is quiet:

* every active, in-scope directory user is present, active, with its attributes;
* every disabled or out-of-scope user is absent, or present and inactive where the
  deprovision mode keeps accounts (``disable``, ``disable_and_remove_from_groups``); a
  deleted user is absent;
* the groups the target receives and that are in scope (every group for scopes ``all``
  and ``filter``, the scoping groups for ``groups``) are present with their attributes, and
  no other group is;
* a present group's members are the directory's members that are users present at the
  target, less the inactive ones under ``disable_and_remove_from_groups``.

The directory is read through the bridge's SCIM API; the target's side through the fake's
model (webhooks) or its own SCIM API (outbound SCIM). Only the default mapping (the SCIM
resource as is) is projected; the attributes compared are those tests write.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from tests.factories import ENTERPRISE
from tests.fakes.scim_target import ScimTarget
from tests.fakes.webhook_target import HeldGroup, HeldUser
from tests.faults.client import BridgeClient, TargetHandle

USER_ATTRIBUTES = ("userName", "externalId", "displayName", "title", "name", "emails", ENTERPRISE)
"""User attributes compared between the directory and a target."""

GROUP_ATTRIBUTES = ("displayName", "externalId")
"""Group attributes compared between the directory and a target."""

SETTLE_SECONDS = 5.0
"""How long a quiet bridge may show the same differences before a check gives up on it."""

KEEPS_ACCOUNTS = frozenset({"disable", "disable_and_remove_from_groups"})
"""Deprovision modes that leave a deprovisioned user at the target, inactive."""


@dataclass(frozen=True)
class Directory:
    """The bridge's directory as its SCIM API lists it."""

    users: dict[str, dict]
    groups: dict[str, dict]

    @classmethod
    def read(cls, bridge: BridgeClient) -> Directory:
        users = {u["id"]: u for u in bridge.list("/Users")}
        groups = {g["id"]: g for g in bridge.list("/Groups")}
        return cls(users, groups)

    def members(self, gid: str) -> set[str]:
        """The users among group ``gid``'s members."""
        values = {m.get("value") for m in self.groups[gid].get("members") or []}
        return {v for v in values if v in self.users}


@dataclass
class Held:
    """What a target holds, keyed by directory ids where it can be matched."""

    users: dict[str, HeldUser]
    groups: dict[str, HeldGroup]


def held_by(handle: TargetHandle, directory: Directory) -> Held:
    if isinstance(handle.fake, ScimTarget):
        return _held_by_scim(handle.fake, directory)
    users, groups = handle.fake.model.snapshot()
    return Held(users, groups)


def _held_by_scim(fake: ScimTarget, directory: Directory) -> Held:
    """The target's own ids translated to the directory's: users by userName, groups by
    displayName; what matches nothing keeps a ``?``-marked key, so it shows as extra."""
    by_name = {u["userName"].casefold(): uid for uid, u in directory.users.items()}
    by_title = {g["displayName"].casefold(): gid for gid, g in directory.groups.items()}
    users: dict[str, HeldUser] = {}
    key_of_remote: dict[str, str] = {}
    for resource in fake.read("/Users"):
        name = str(resource.get("userName", ""))
        key = by_name.get(name.casefold(), f"?user {name}")
        key_of_remote[resource["id"]] = key
        users[key] = HeldUser(resource, resource.get("active", True) is not False)
    groups: dict[str, HeldGroup] = {}
    for resource in fake.read("/Groups"):
        title = str(resource.get("displayName", ""))
        members = {
            key_of_remote.get(m.get("value"), f"?dangling member {m.get('value')}")
            for m in resource.get("members") or []
        }
        groups[by_title.get(title.casefold(), f"?group {title}")] = HeldGroup(resource, members)
    return Held(users, groups)


def differences(handle: TargetHandle, directory: Directory, bridge: BridgeClient) -> list[str]:
    """Every way the target differs from the directory projected through its settings."""
    config = handle.config
    held = held_by(handle, directory)
    label = f"target {handle.name}"
    wanted = wanted_users(config, directory, bridge)
    diffs: list[str] = []
    for uid, user in directory.users.items():
        diffs += [f"{label}: {d}" for d in _user_diffs(config, uid, user, uid in wanted, held)]
    diffs += [f"{label}: extra user {k}" for k in held.users if k not in directory.users]
    for gid in sorted(set(wanted_groups(config, directory)) | set(held.groups)):
        diffs += [f"{label}: {d}" for d in _group_diffs(config, gid, directory, held)]
    return diffs


def wanted_users(config: dict, directory: Directory, bridge: BridgeClient) -> set[str]:
    """Directory users in the target's scope (active or not)."""
    if "users" not in config.get("resources", ["users", "groups"]):
        return set()
    scope = config.get("scope") or {"type": "all"}
    if scope["type"] == "groups":
        found: set[str] = set()
        for gid in scope.get("groups") or ():
            if gid in directory.groups:
                found |= directory.members(gid)
        return found
    if scope["type"] == "filter":
        return {u["id"] for u in bridge.list("/Users", filter=scope["filter"])}
    return set(directory.users)


def wanted_groups(config: dict, directory: Directory) -> set[str]:
    """Directory groups the target receives."""
    if "groups" not in config.get("resources", ["users", "groups"]):
        return set()
    scope = config.get("scope") or {"type": "all"}
    if scope["type"] == "groups":
        return set(scope.get("groups") or ()) & set(directory.groups)
    return set(directory.groups)


def _user_diffs(config: dict, uid: str, user: dict, in_scope: bool, held: Held) -> list[str]:
    name = f"user {uid} ({user.get('userName')})"
    there = held.users.get(uid)
    if in_scope and user.get("active", True) is not False:
        if there is None:
            return [f"{name}: missing"]
        if not there.active:
            return [f"{name}: inactive, should be active"]
        return [f"{name}: {d}" for d in _attribute_diffs(USER_ATTRIBUTES, user, there.resource)]
    if there is None:
        return []
    why = "out of scope" if not in_scope else "disabled"
    if config.get("deprovision", "disable") not in KEEPS_ACCOUNTS:
        return [f"{name}: {why}, should be absent (deprovision {config.get('deprovision')})"]
    return [f"{name}: {why}, should be inactive or absent, is active"] if there.active else []


def _group_diffs(config: dict, gid: str, directory: Directory, held: Held) -> list[str]:
    there = held.groups.get(gid)
    if gid not in wanted_groups(config, directory):
        return [f"extra group {gid}"] if there is not None else []
    group = directory.groups[gid]
    name = f"group {gid} ({group.get('displayName')})"
    if there is None:
        return [f"{name}: missing"]
    if there.resource is None:
        return [f"{name}: has members but was never created"]
    diffs = [f"{name}: {d}" for d in _attribute_diffs(GROUP_ATTRIBUTES, group, there.resource)]
    present = {k for k, u in held.users.items()}
    if config.get("deprovision") == "disable_and_remove_from_groups":
        present = {k for k, u in held.users.items() if u.active}
    want = directory.members(gid) & present
    if missing := sorted(want - there.members):
        diffs.append(f"{name}: members missing {missing}")
    if extra := sorted(there.members - want):
        diffs.append(f"{name}: extra members {extra}")
    return diffs


def _attribute_diffs(names: tuple[str, ...], want: dict, has: dict) -> list[str]:
    diffs = []
    for attr in names:
        expected, actual = _normal(want.get(attr)), _normal(has.get(attr))
        if expected != actual:
            diffs.append(f"{attr} is {json.dumps(actual)}, should be {json.dumps(expected)}")
    return diffs


def _normal(value):
    """A value without empty parts, lists in a stable order: representations compare."""
    if isinstance(value, dict):
        out = {k: _normal(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, [], {})} or None
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        items = [v for v in items if v not in (None, [], {})]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True)) or None
    return value


def converge(bridge: BridgeClient, handles: list[TargetHandle], timeout: float = 20.0) -> None:
    """Wait until the bridge is quiet and every target holds the directory's projection;
    an AssertionError with the differences when that does not happen within ``timeout``,
    or when the same differences outlast SETTLE_SECONDS of quiet (nothing left to fix them)."""
    deadline = time.monotonic() + timeout
    diffs: list[str] = ["the bridge never became quiet"]
    stuck_since: float | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if not bridge.wait_quiet(remaining):
            continue
        directory = Directory.read(bridge)
        found = [d for h in handles for d in differences(h, directory, bridge)]
        if not found:
            return
        if found != diffs:
            diffs, stuck_since = found, time.monotonic()
        elif time.monotonic() - stuck_since > SETTLE_SECONDS:
            timeout = time.monotonic() - deadline + timeout
            break
        time.sleep(0.3)
    if stuck_since is None:  # never quiet: say where the targets stand anyway
        directory = Directory.read(bridge)
        diffs += [d for h in handles for d in differences(h, directory, bridge)]
    raise AssertionError(
        f"targets did not converge ({timeout:.0f} s):\n  "
        + "\n  ".join(diffs[:60])
        + (f"\n  ... and {len(diffs) - 60} more" if len(diffs) > 60 else "")
        + f"\nstatus: {json.dumps(_status_or_error(bridge))[:3000]}"
    )


def holds_within(bridge: BridgeClient, handles: list[TargetHandle], timeout: float) -> None:
    """Wait until these targets hold the directory's projection, whatever else the bridge
    is still doing (other targets may be failing); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        directory = Directory.read(bridge)
        diffs = [d for h in handles for d in differences(h, directory, bridge)]
        if not diffs:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"targets did not converge within {timeout:.0f} s:\n  " + "\n  ".join(diffs[:60])
            )
        time.sleep(0.2)


def _status_or_error(bridge: BridgeClient):
    try:
        return bridge.status()
    except Exception as exc:  # noqa: BLE001 - a report, whatever went wrong
        return repr(exc)
