"""Group membership in a PATCH: every operation on ``members`` folded into one change set.

Members live outside the stored document (the directory keeps them as sets), so a
Group's ``members`` operations are taken out of the request, in order, and their net
effect handed to the directory as :class:`MemberChanges`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.directory.ids import is_id
from bridge.scim import errors
from bridge.scim.attributes import Attribute
from bridge.scim.patch import PatchOperation
from bridge.scim.paths import PatchPath, equality_values, parse_patch_path
from bridge.scim.resource_types import ResourceType
from bridge.scim.resources import check_member_id

Member = dict[str, str]
"""A member object with canonical keys: ``value`` (the id), maybe ``type``, ``display``,
``$ref``."""

_MEMBER_KEYS = {"value": "value", "type": "type", "display": "display", "$ref": "$ref"}
"""Sub-attributes kept from a group member object (RFC 7643 §4.2), by lower-case name."""


@dataclass
class MemberChanges:
    """The net effect of a request's ``members`` operations on a group.

    When ``replace`` is not None the membership becomes exactly ``replace`` (``[]``: no
    members) and ``add``/``remove`` are empty. Otherwise remove the ``remove`` ids, then
    add the ``add`` members; no id is in both.
    """

    add: list[Member] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    replace: list[Member] | None = None

    @property
    def empty(self) -> bool:
        """True when the request does not touch membership."""
        return not self.add and not self.remove and self.replace is None


def split_member_operations(
    ops: list[PatchOperation], rtype: ResourceType
) -> tuple[list[PatchOperation], MemberChanges]:
    """Fold a Group request's ``members`` operations into MemberChanges; return the rest.

    Operations are folded in order, in time linear in the number of members.
    """
    if rtype.id != "Group":
        return list(ops), MemberChanges()
    members_attr = rtype.schema.attribute("members")
    assert members_attr is not None
    fold = _MemberFold()
    rest: list[PatchOperation] = []
    for op in ops:
        if "path" not in op:
            value = _flatten_core(op["value"], rtype)
            key = next((k for k in value if _is_members_key(k, rtype)), None)
            if key is None:
                rest.append(op)
                continue
            if op["op"] == "add":
                fold.added(_member_list(value[key]))
            else:
                fold.replaced(_member_list(value[key]))
            others = {k: v for k, v in value.items() if k != key}
            if others:
                rest.append({"op": op["op"], "value": others})
            continue
        if rtype.extension(op["path"]) is not None:
            rest.append(op)
            continue
        path = parse_patch_path(op["path"], rtype)
        if path.resolved.is_extension or path.attribute.name != "members":
            rest.append(op)
        else:
            _fold_member_op(op, path, members_attr, fold)
    return rest, fold.result()


def _fold_member_op(
    op: PatchOperation, path: PatchPath, members_attr: Attribute, fold: _MemberFold
) -> None:
    kind = op["op"]
    if path.sub_attr is not None:
        raise errors.InvalidPath(f"{op['path']!r}: member sub-attributes cannot be patched")
    if path.value_filter is not None:
        if kind != "remove":
            raise errors.InvalidPath(f"{op['path']!r}: only remove accepts a members value filter")
        ids = equality_values(path.value_filter, members_attr, "value")
        if ids is None or not all(isinstance(i, str) for i in ids):
            raise errors.InvalidFilter('members filters support only value eq "id", joined by or')
        for member_id in ids:
            check_member_id(member_id)
        fold.removed(ids)
    elif kind == "add":
        fold.added(_member_list(op["value"]))
    elif kind == "replace":
        fold.replaced(_member_list(op.get("value")))
    elif "value" in op:  # Entra: {"op": "Remove", "path": "members", "value": [{"value": id}]}
        fold.removed([m["value"] for m in _member_list(op["value"])])
    else:  # RFC 7644 §3.5.2.2: remove all members
        fold.replaced([])


def _flatten_core(value: object, rtype: ResourceType) -> dict[str, Any]:
    """A path-less value with the core schema's object spelled out as ``urn:attr`` keys."""
    if not isinstance(value, dict):
        return {}
    core = next((k for k in value if k.casefold() == rtype.schema.id.casefold()), None)
    if core is None or not isinstance(value[core], dict):
        return value
    flat = {k: v for k, v in value.items() if k != core}
    flat.update({f"{rtype.schema.id}:{k}": v for k, v in value[core].items()})
    return flat


def _is_members_key(key: str, rtype: ResourceType) -> bool:
    folded = key.casefold()
    return folded == "members" or folded == f"{rtype.schema.id}:members".casefold()


def _member_list(value: object) -> list[Member]:
    if value is None:
        return []
    return [_member(item) for item in (value if isinstance(value, list) else [value])]


def _member(item: object) -> Member:
    """A member object with canonical keys; other keys (Entra's displayName) are ignored."""
    if not isinstance(item, dict):
        raise errors.InvalidValue("each member must be an object with a 'value'")
    only = item.get("value")
    if len(item) == 1 and isinstance(only, str) and is_id(only):
        return {"value": only}  # what Entra sends: {"value": id}, already canonical
    member: Member = {}
    for key, value in item.items():
        name = _MEMBER_KEYS.get(key.casefold())
        if name is None or value is None:
            continue
        if not isinstance(value, str):
            raise errors.InvalidValue(f"members.{name} must be a string")
        member[name] = value
    if not member.get("value"):
        raise errors.InvalidValue("each member needs a non-empty string 'value'")
    check_member_id(member["value"])
    return member


class _MemberFold:
    """Accumulates membership operations in order; dicts keep every step O(1)."""

    def __init__(self) -> None:
        self.add: dict[str, Member] = {}
        self.remove: dict[str, None] = {}
        self.replace: dict[str, Member] | None = None

    def added(self, members: list[Member]) -> None:
        """``add``: the members join (again), undoing an earlier removal."""
        for member in members:
            if self.replace is not None:
                self.replace[member["value"]] = member
            else:
                self.remove.pop(member["value"], None)
                self.add[member["value"]] = member

    def removed(self, ids: list[str]) -> None:
        """``remove`` of these ids, undoing an earlier addition."""
        for member_id in ids:
            if self.replace is not None:
                self.replace.pop(member_id, None)
            else:
                self.add.pop(member_id, None)
                self.remove[member_id] = None

    def replaced(self, members: list[Member]) -> None:
        """``replace``: the membership becomes exactly ``members``; earlier steps are moot."""
        self.add, self.remove = {}, {}
        self.replace = {m["value"]: m for m in members}

    def result(self) -> MemberChanges:
        """The net effect of every step so far."""
        replace = None if self.replace is None else list(self.replace.values())
        return MemberChanges(list(self.add.values()), list(self.remove), replace)
