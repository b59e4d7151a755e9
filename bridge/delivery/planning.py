"""Delivery planning, without I/O: the change a target needs for one resource, and its state after.

Everything here is a function of what the caller read (the record, the target's state of
the item and, for a group, of its members): the relay reads, plans, then acts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.directory.stored import Kind, Record
from bridge.scim.filter_eval import matches
from bridge.scim.resource_types import ResourceType
from bridge.targets.base import Action, Change
from bridge.targets.mapping import apply_mapping
from bridge.targets.model import KEEPS_INACTIVE_MEMBERS, Target

State = dict[str, Any]
"""What the bridge last brought a target to for one item (stored as JSON)."""

Members = dict[str, str | None]
"""A group's members at a target: our user id -> the target's id for it (when known)."""

MATCH_KEYS: dict[Kind, tuple[str, str]] = {
    "user": ("userName", "externalId"),
    "group": ("displayName", "externalId"),
}
"""What identifies a resource the target may hold but the bridge never heard back about."""


@dataclass(frozen=True)
class Plan:
    """A planned change, with (for a group) the members it was planned for."""

    change: Change
    wanted_members: Members | None = None


@dataclass(frozen=True)
class Planner:
    """Plans deliveries; needs the resource types for scope filters and mappings."""

    resource_types: dict[str, ResourceType]

    def plan_user(
        self, target: Target, rid: str, record: Record | None, state: State
    ) -> Plan | None:
        """The change that brings the target's copy of a user in line; None: nothing to do."""
        present = bool(state.get("present"))
        maybe = state.get("maybe") or {}
        wanted = record is not None and target.receives("user") and self.in_scope(target, record)
        active = record is not None and record.doc.get("active", True) is not False
        if record is None or not wanted or not active:
            if not present and not maybe.get("present"):
                return None  # never provisioned there: nothing to take away
            if record is None or target.deprovision == "delete":
                return Plan(make_change(target, "user", rid, "delete", None, state))
            if state.get("active") is False and not maybe.get("active"):
                return None
            payload = self.payload(target, record)
            return Plan(make_change(target, "user", rid, "deactivate", payload, state))
        payload = self.payload(target, record)
        payload_digest = digest(payload)
        same = state.get("active", True) and state.get("digest") == payload_digest
        if present and same and not maybe:
            return None
        action: Action = "update" if present else "create"
        return Plan(
            make_change(target, "user", rid, action, payload, state, payload_digest=payload_digest)
        )

    def plan_group(
        self,
        target: Target,
        rid: str,
        record: Record | None,
        state: State,
        member_states: dict[str, State],
    ) -> Plan | None:
        """The change that brings the target's copy of a group and its members in line,
        given the target's states of the users :func:`member_ids` names."""
        present = bool(state.get("present"))
        maybe = state.get("maybe") or {}
        wanted = record is not None and target.receives("group") and group_in_scope(target, rid)
        if record is None or not wanted:
            held = present or maybe.get("present")
            return (
                Plan(make_change(target, "group", rid, "delete", None, state), {}) if held else None
            )
        payload = self.payload(target, record)
        confirmed = members_of(state)
        current = listed_members(state)  # perhaps there: named to remove
        desired = wanted_members(target, record, current, member_states)
        added = sorted(desired.keys() - confirmed.keys())  # perhaps there: added to be sure
        removed = sorted(current.keys() - desired.keys())
        payload_digest = digest(payload)
        same = present and state.get("digest") == payload_digest
        if same and not added and not removed and not maybe:
            return None
        action: Action = "none" if same else ("update" if present else "create")
        change = make_change(
            target, "group", rid, action, payload, state, added, removed, payload_digest
        )
        refs = {u: desired[u] for u in added}
        refs |= {u: current[u] or member_states.get(u, {}).get("remote_id") for u in removed}
        change.member_refs = {u: ref for u, ref in refs.items() if ref}
        return Plan(change, desired)

    def in_scope(self, target: Target, record: Record) -> bool:
        """Whether the target's scope takes this user."""
        scope = target.scope_type
        if scope == "all":
            return True
        if scope == "groups":
            return bool(target.scope_groups.intersection(record.groups or ()))
        scope_filter = target.scope_filter  # parsed from the scope: set when its type is filter
        return scope_filter is not None and matches(
            scope_filter, record.as_resource(), self.resource_types["User"]
        )

    def payload(self, target: Target, record: Record) -> dict[str, Any]:
        """The record as the target's mapping shows it."""
        rtype = self.resource_types["User" if record.kind == "user" else "Group"]
        mapping = target.user_mapping if record.kind == "user" else target.group_mapping
        # the document and id only: derived attributes (groups, members) travel separately
        resource = dict(record.doc)
        resource["id"] = record.id
        return apply_mapping(mapping, resource, rtype)


def member_ids(target: Target, record: Record, state: State) -> list[str]:
    """The users whose target states a group's plan needs: the directory's members and
    every member the target lists or may list."""
    if not target.receives("user"):
        return []
    return sorted(set(user_members(record)) | set(listed_members(state)))


def wanted_members(
    target: Target, record: Record, current: Members, states: dict[str, State]
) -> Members:
    """The group's members the target must list, with the target's id for each: the
    directory's user members that the target holds (active ones, unless the target keeps
    deprovisioned users in its groups). A SCIM target's members are named by its own ids,
    so a user it holds under no known id cannot be listed."""
    if not target.receives("user"):
        return {}
    by_our_id = target.kind != "scim"
    wanted: Members = {}
    for uid in user_members(record):
        state = states.get(uid, {})
        ref = state.get("remote_id") or current.get(uid)
        if is_member(target, state) and (by_our_id or ref):
            wanted[uid] = ref
    return wanted


def user_members(record: Record) -> list[str]:
    """The group record's members that are users."""
    return [m["value"] for m in record.members or [] if m.get("type") == "User"]


def group_in_scope(target: Target, gid: str) -> bool:
    """Whether the target's scope takes this group."""
    return target.scope_type != "groups" or gid in target.scope_groups


def holding(state: State) -> tuple[bool, bool]:
    """Whether the target holds the user, and whether as active."""
    return bool(state.get("present")), state.get("active", True) is not False


def is_member(target: Target, user_state: State) -> bool:
    """Whether a user in this state belongs in the target's copies of its groups."""
    present, active = holding(user_state)
    return present and (active or target.deprovision in KEEPS_INACTIVE_MEMBERS)


def members_of(state: State) -> Members:
    """A group state's members, our id -> the target's id (older states kept a plain list)."""
    members = state.get("members") or {}
    if isinstance(members, list):
        return dict.fromkeys(members)
    return dict(members)


def listed_members(state: State) -> Members:
    """The members the target lists, confirmed or perhaps (a change not heard back from)."""
    return members_of(state) | ((state.get("maybe") or {}).get("members") or {})


def intent(change: Change, state: State) -> State | None:
    """The state to record before ``change`` is sent: the last confirmed one, plus under
    ``maybe`` what the change may give once the target acts.

    A worker can die between the target acting and the bridge saving what it did. What a
    change *gives* (an account, an active flag, a membership) is therefore recorded first,
    with the keys that find the account again: a later delivery then takes away whatever
    should not be there, instead of never knowing it is there. The confirmed state stays
    as it was (it names the change, and so its idempotency key, across retries). None:
    the change gives nothing."""
    grants = change.action == "create" or (
        change.kind == "user" and change.action == "update" and state.get("active") is False
    )
    if not grants and not change.members_added:
        return None
    maybe = dict(state.get("maybe") or {})
    maybe["present"] = True
    if change.kind == "user":
        maybe["active"] = True
    added = {u: change.member_refs.get(u) for u in change.members_added}
    if added:
        maybe["members"] = {**(maybe.get("members") or {}), **added}
    if change.payload is not None and not state.get("present"):
        keys = MATCH_KEYS[change.kind]
        maybe["match"] = {k: change.payload[k] for k in keys if change.payload.get(k)}
    return {**state, "maybe": maybe}


def takes_access_away(change: Change) -> bool:
    """Whether the change deprovisions a user (the deletion guard counts these)."""
    return change.kind == "user" and change.action in ("deactivate", "delete")


def digest(payload: dict[str, Any] | None) -> str:
    """A short stable hash of a payload: equal digests, nothing to send."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def make_change(
    target: Target,
    kind: Kind,
    rid: str,
    action: Action,
    payload: dict[str, Any] | None,
    state: State,
    added: Sequence[str] = (),
    removed: Sequence[str] = (),
    payload_digest: str | None = None,
) -> Change:
    """The change, with an idempotency key that names it: the same across retries (the
    state they start from does not move), new for the same content sent again later
    (enabled again after a disable, say): ``seq`` counts the deliveries that succeeded.
    ``payload_digest``: the payload's :func:`digest`, when the caller has it."""
    seq = state.get("seq", 0)
    if payload_digest is None:
        payload_digest = digest(payload)
    basis = f"{target.id}|{kind}|{rid}|{seq}|{action}|{payload_digest}|{','.join(added)}|{','.join(removed)}"
    key = "msg_" + hashlib.sha256(basis.encode()).hexdigest()[:32]
    return Change(
        kind,
        rid,
        action,
        payload,
        dict(state),
        key,
        list(added),
        list(removed),
        payload_digest=payload_digest,
    )


def next_state(change: Change, old: State, remember: dict[str, Any]) -> State:
    """What the target holds after ``change`` succeeded."""
    seq = old.get("seq", 0) + 1
    if change.action == "delete":
        return {"present": False, "seq": seq}
    remember = dict(remember)
    reset = remember.pop("members", None)  # the connector: the target holds only these now
    skipped = set(remember.pop("skipped_members", ()))
    state = {
        k: v for k, v in old.items() if k not in ("pending_members", "skipped_members", "maybe")
    }
    state.update(remember)
    state["present"] = True
    state["seq"] = seq
    if change.payload is not None:
        made = change.payload_digest
        state["digest"] = made if made is not None else digest(change.payload)
    if change.kind == "user":
        state["active"] = change.action != "deactivate"
        return state
    members = dict.fromkeys(reset) if reset is not None else members_of(old)
    for uid in change.members_removed:
        members.pop(uid, None)
    for uid in change.members_added:
        if uid not in skipped:
            members[uid] = change.member_refs.get(uid)
    state["members"] = members
    return state
