"""PATCH (RFC 7644 §3.5.2): validate a PatchOp request and apply it to a stored resource.

Group membership lives outside the document, so :func:`split_member_operations` folds
every operation on ``members`` into one :class:`MemberChanges`; :func:`apply_operations`
applies the rest to the stored dict and reports whether it changed. Microsoft Entra ID's
dialect is accepted too: capitalised ``op`` values, string booleans, the manager as a
bare id, ``remove`` of members listed in ``value``, and value-filtered paths that name an
element which does not exist yet.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.scim import errors
from bridge.scim.attributes import Attribute
from bridge.scim.filter import matches_element
from bridge.scim.paths import (
    PatchPath,
    coerce_element,
    coerce_value,
    delete_value,
    element_from_filter,
    equality_values,
    find_key,
    get_value,
    is_hollow,
    merge_values,
    parse_patch_path,
    set_value,
    settle_primary,
    store_value,
)
from bridge.scim.resource_types import ResolvedPath, ResourceType
from bridge.scim.resources import check_member_id

PATCH_OP_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OPERATIONS = frozenset({"add", "remove", "replace"})
"""The ``op`` values of RFC 7644 §3.5.2, compared case-insensitively (Entra sends "Add")."""

MAX_PATCH_OPERATIONS = 1000
"""Most operations one PATCH request may carry, as many as a /Bulk request; a client with
more sends several requests. More is answered 400 invalidValue (RFC 7644 §3.12)."""

_SERVER_MANAGED = frozenset({"id", "meta", "schemas"})
"""Common attributes (RFC 7643 §3, §3.1) ignored when they appear in a path-less value."""

_MEMBER_KEYS = {"value": "value", "type": "type", "display": "display", "$ref": "$ref"}
"""Sub-attributes kept from a group member object (RFC 7643 §4.2), by lower-case name."""

_MISSING = object()


@dataclass
class MemberChanges:
    """The net effect of a request's ``members`` operations on a group.

    When ``replace`` is not None the membership becomes exactly ``replace`` (``[]``: no
    members) and ``add``/``remove`` are empty. Otherwise remove the ``remove`` ids, then
    add the ``add`` members; no id is in both.
    """

    add: list[dict] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    replace: list[dict] | None = None

    @property
    def empty(self) -> bool:
        """True when the request does not touch membership."""
        return not self.add and not self.remove and self.replace is None


# --- Request validation -------------------------------------------------------------------


def parse_operations(body: Any) -> list[dict]:
    """Validate a PatchOp request (RFC 7644 §3.5.2); return its normalised operations.

    Each is ``{"op": "add"|"remove"|"replace", "path"?: str, "value"?: Any}``.
    """
    if not isinstance(body, dict):
        raise errors.InvalidSyntax("the PATCH body must be a JSON object")
    schemas = _lookup(body, "schemas", None)
    if not isinstance(schemas, list) or not any(
        isinstance(s, str) and s.casefold() == PATCH_OP_URN.casefold() for s in schemas
    ):
        raise errors.InvalidSyntax(f"schemas must contain {PATCH_OP_URN}")
    operations = _lookup(body, "Operations", None)
    if not isinstance(operations, list) or not operations:
        raise errors.InvalidSyntax("Operations must be a non-empty list")
    if len(operations) > MAX_PATCH_OPERATIONS:
        raise errors.InvalidValue(
            f"the request has {len(operations)} operations; at most {MAX_PATCH_OPERATIONS}"
        )
    return [_parse_operation(i, raw) for i, raw in enumerate(operations)]


def _parse_operation(index: int, raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise errors.InvalidSyntax(f"Operations[{index}] must be an object")
    name = _lookup(raw, "op", None)
    if not isinstance(name, str) or name.casefold() not in OPERATIONS:
        raise errors.InvalidSyntax(f"Operations[{index}].op must be add, remove or replace")
    op: dict[str, Any] = {"op": name.casefold()}
    path = _lookup(raw, "path", None)
    if path is not None and not isinstance(path, str):
        raise errors.InvalidSyntax(f"Operations[{index}].path must be a string")
    if path and path.strip():
        op["path"] = path.strip()
    value = _lookup(raw, "value", _MISSING)
    if op["op"] == "remove":
        if "path" not in op:
            raise errors.NoTarget(f"Operations[{index}]: remove needs a path (RFC 7644 §3.5.2.2)")
        if value is not _MISSING and value is not None:
            op["value"] = value
        return op
    # RFC 7643 §2.5: null means unassigned, so "replace" with null clears the target.
    if value is _MISSING or (value is None and (op["op"] == "add" or "path" not in op)):
        raise errors.InvalidValue(f"Operations[{index}]: {op['op']} needs a value")
    op["value"] = value
    return op


# --- Group membership ---------------------------------------------------------------------


def split_member_operations(
    ops: list[dict], rtype: ResourceType
) -> tuple[list[dict], MemberChanges]:
    """Fold a Group request's ``members`` operations into MemberChanges; return the rest.

    Operations are folded in order, in time linear in the number of members.
    """
    if rtype.id != "Group":
        return list(ops), MemberChanges()
    members_attr = rtype.schema.attribute("members")
    assert members_attr is not None
    fold = _MemberFold()
    rest: list[dict] = []
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
                rest.append({**op, "value": others})
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


def _fold_member_op(op: dict, path: PatchPath, members_attr: Attribute, fold: _MemberFold) -> None:
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


def _flatten_core(value: Any, rtype: ResourceType) -> dict:
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


def _member_list(value: Any) -> list[dict]:
    if value is None:
        return []
    return [_member(item) for item in (value if isinstance(value, list) else [value])]


def _member(item: Any) -> dict:
    """A member object with canonical keys; other keys (Entra's displayName) are ignored."""
    if not isinstance(item, dict):
        raise errors.InvalidValue("each member must be an object with a 'value'")
    member: dict[str, str] = {}
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
        self.add: dict[str, dict] = {}
        self.remove: dict[str, None] = {}
        self.replace: dict[str, dict] | None = None

    def added(self, members: list[dict]) -> None:
        for member in members:
            if self.replace is not None:
                self.replace[member["value"]] = member
            else:
                self.remove.pop(member["value"], None)
                self.add[member["value"]] = member

    def removed(self, ids: list[str]) -> None:
        for member_id in ids:
            if self.replace is not None:
                self.replace.pop(member_id, None)
            else:
                self.add.pop(member_id, None)
                self.remove[member_id] = None

    def replaced(self, members: list[dict]) -> None:
        self.add, self.remove = {}, {}
        self.replace = {m["value"]: m for m in members}

    def result(self) -> MemberChanges:
        replace = None if self.replace is None else list(self.replace.values())
        return MemberChanges(list(self.add.values()), list(self.remove), replace)


# --- Applying operations to the document --------------------------------------------------


def apply_operations(resource: dict, ops: list[dict], rtype: ResourceType) -> bool:
    """Apply ``ops`` in order to ``resource`` in place; True iff it changed.

    On error the resource may be partly patched: callers pass a copy and drop it, which
    makes the request atomic (RFC 7644 §3.5.2).
    """
    before = copy.deepcopy(resource)
    patcher = _Patcher(resource, rtype)
    for op in ops:
        patcher.apply(op)
    patcher.declare_extensions()
    return resource != before


class _Patcher:
    """Applies single operations to one resource document."""

    def __init__(self, resource: dict, rtype: ResourceType) -> None:
        self.resource = resource
        self.rtype = rtype
        self.extensions_written: set[str] = set()

    def apply(self, op: dict) -> None:
        if "path" not in op:
            self._apply_pathless(op["op"], op["value"])
        elif (schema := self.rtype.extension(op["path"])) is not None:
            self._apply_extension(op["op"], schema.id, op.get("value"))
        else:
            self._apply_path(op["op"], parse_patch_path(op["path"], self.rtype), op.get("value"))

    def _apply_extension(self, kind: str, urn: str, value: Any) -> None:
        """A path that is a whole extension schema's URN: its attributes, as an object.

        ``add`` and ``replace`` set the sub-attributes given and leave the others (RFC 7644
        §3.5.2.1, §3.5.2.3, as for any complex attribute); ``remove`` drops the extension.
        """
        if kind == "remove" or value is None:
            delete_value(self.resource, urn)
            schemas = self.resource.get("schemas")
            if isinstance(schemas, list):
                self.resource["schemas"] = [s for s in schemas if s.casefold() != urn.casefold()]
            return
        if not isinstance(value, dict):
            raise errors.InvalidValue(f"{urn} takes an object of its attributes")
        # Some clients send the extension object with its own "schemas": not an attribute.
        value = {k: v for k, v in value.items() if k.casefold() not in _SERVER_MANAGED}
        self._apply_pathless(kind, {urn: value})

    def declare_extensions(self) -> None:
        """List each extension written to in ``schemas`` (RFC 7643 §3)."""
        for urn in sorted(self.extensions_written):
            if get_value(self.resource, urn):
                schemas = self.resource.setdefault("schemas", [self.rtype.schema.id])
                if not any(s.casefold() == urn.casefold() for s in schemas):
                    schemas.append(urn)

    def _apply_pathless(self, kind: str, value: Any) -> None:
        """RFC 7644 §3.5.2.1, §3.5.2.3: without a path, each key of the value is a path."""
        if not isinstance(value, dict):
            raise errors.InvalidValue(f"{kind} without a path needs an object value")
        for key, item in value.items():
            schema = self.rtype.extension(key)
            if schema is None and key.casefold() == self.rtype.schema.id.casefold():
                schema = self.rtype.schema
            if schema is None:
                self._apply_key(kind, key, item)
            elif isinstance(item, dict):
                for sub_key, sub_item in item.items():
                    self._apply_key(kind, f"{schema.id}:{sub_key}", sub_item)
            elif item is not None:
                raise errors.InvalidValue(f"{key} must be an object")

    def _apply_key(self, kind: str, key: str, item: Any) -> None:
        path = parse_patch_path(key, self.rtype)
        if path.attribute.name in _SERVER_MANAGED and not path.resolved.is_extension:
            return
        if item is not None:
            self._apply_path(kind, path, item)
        elif kind == "replace":
            self._apply_path("remove", path, None)

    def _apply_path(self, kind: str, path: PatchPath, value: Any) -> None:
        attr, sub = path.attribute, path.sub_attr
        if attr.name == "schemas" and not path.resolved.is_extension:
            raise errors.Mutability("schemas is maintained by the service provider")
        for target in (attr, sub):
            if target is not None and target.mutability == "readOnly":
                raise errors.Mutability(f"{target.name} is read-only")
        if kind == "replace" and value is None:
            kind = "remove"  # RFC 7643 §2.5: null is equivalent to unassigned
        container = self._container(path.resolved, create=kind != "remove")
        if container is None:
            return
        guarded = attr.mutability == "immutable" or attr.required
        old = copy.deepcopy(get_value(container, attr.name)) if guarded else None
        if path.value_filter is not None or (sub is not None and attr.multi_valued):
            self._on_elements(kind, path, container, value)
        elif sub is not None:
            _on_sub_attribute(kind, attr, sub, container, value)
        else:
            _on_attribute(kind, attr, container, value)
        if guarded:
            _check_guards(attr, old, get_value(container, attr.name))
        if path.resolved.is_extension and not container:
            delete_value(self.resource, path.resolved.schema.id)

    def _container(self, resolved: ResolvedPath, create: bool) -> dict | None:
        """The dict holding the attribute: the resource, or its extension object."""
        if not resolved.is_extension:
            return self.resource
        urn = resolved.schema.id
        current = get_value(self.resource, urn)
        if not isinstance(current, dict):
            if not create:
                return None
            current = {}
        set_value(self.resource, urn, current)
        if create:
            self.extensions_written.add(urn)
        return current

    def _on_elements(self, kind: str, path: PatchPath, container: dict, value: Any) -> None:
        """Operate on the elements a value filter selects (all when there is no filter)."""
        attr, sub, selector = path.attribute, path.sub_attr, path.value_filter
        stored = get_value(container, attr.name)
        elements = stored if isinstance(stored, list) else []
        matched = [
            e
            for e in elements
            if isinstance(e, dict) and (selector is None or matches_element(selector, e, attr))
        ]
        if kind == "remove":
            # Idempotent: a filter matching nothing is a no-op rather than noTarget,
            # because Entra repeats removals.
            if matched:
                store_value(container, attr.name, _remove_matched(attr, sub, elements, matched))
            return
        new = coerce_value(sub, value) if sub is not None else coerce_element(attr, value)
        created = not matched
        if created:
            matched = [element_from_filter(path)]
            elements = [*elements, *matched]
        for element in matched:
            if sub is not None:
                store_value(element, sub.name, new)
            else:
                if kind == "replace" and not created:
                    element.clear()
                merge_values(element, copy.deepcopy(new))
        touches_primary = sub.name == "primary" if sub is not None else "primary" in new
        if touches_primary:
            settle_primary(elements, matched)
        store_value(container, attr.name, elements)


def _on_attribute(kind: str, attr: Attribute, container: dict, value: Any) -> None:
    """Operate on a whole attribute (RFC 7644 §3.5.2.1-3)."""
    old = get_value(container, attr.name)
    if kind == "remove":
        if value is not None and attr.multi_valued and isinstance(old, list):
            # Entra's dialect: remove the listed values only.
            doomed = _doomed(attr, value)
            store_value(container, attr.name, [e for e in old if not _listed(e, doomed)])
        else:
            delete_value(container, attr.name)
        return
    new = coerce_value(attr, value)
    if attr.multi_valued:
        fresh = new
        if kind == "add":
            current = old if isinstance(old, list) else []
            seen = {_identity(item) for item in current}
            fresh = []
            for item in new:
                if (key := _identity(item)) not in seen:
                    seen.add(key)
                    fresh.append(item)
            new = [*current, *fresh]
        settle_primary(new, fresh)
    elif attr.type == "complex" and isinstance(old, dict):
        # Sub-attributes not in the value are left unchanged (RFC 7644 §3.5.2.1, §3.5.2.3).
        new = {**old, **new}
    store_value(container, attr.name, new)


def _on_sub_attribute(
    kind: str, attr: Attribute, sub: Attribute, container: dict, value: Any
) -> None:
    """Operate on a sub-attribute of a single-valued complex attribute (``name.givenName``)."""
    parent = get_value(container, attr.name)
    if not isinstance(parent, dict):
        if kind == "remove":
            return
        parent = {}
    if kind == "remove":
        delete_value(parent, sub.name)
    else:
        store_value(parent, sub.name, coerce_value(sub, value))
    store_value(container, attr.name, parent)


def _remove_matched(
    attr: Attribute, sub: Attribute | None, elements: list, matched: list[dict]
) -> list:
    """``elements`` without the matched ones, or without their ``sub`` attribute.

    An element left without its ``value`` (or with only ``type``/``primary``) is dropped.
    """
    chosen = {id(m) for m in matched}
    if sub is None:
        return [e for e in elements if id(e) not in chosen]
    for element in matched:
        delete_value(element, sub.name)
    return [e for e in elements if not (id(e) in chosen and is_hollow(attr, e))]


def _identity(item: Any) -> bytes:
    """A hashable stand-in for a JSON value, equal for equal values: sets keep adding and
    removing many values linear in their number."""
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS)


def _doomed(attr: Attribute, value: Any) -> tuple[set[bytes], set[bytes]]:
    """The ``value`` of a remove, as the identities of listed ``value``s and of whole items."""
    by_value: set[bytes] = set()
    whole: set[bytes] = set()
    for item in coerce_value(attr, value):
        if isinstance(item, dict) and "value" in item:
            by_value.add(_identity(item["value"]))
        else:
            whole.add(_identity(item))
    return by_value, whole


def _listed(element: Any, doomed: tuple[set[bytes], set[bytes]]) -> bool:
    """Whether ``element`` is one of ``doomed``, compared by ``value`` when both have one."""
    by_value, whole = doomed
    if (
        isinstance(element, dict)
        and by_value
        and _identity(get_value(element, "value")) in by_value
    ):
        return True
    return _identity(element) in whole


def _check_guards(attr: Attribute, old: Any, new: Any) -> None:
    if attr.mutability == "immutable" and old is not None and new != old:
        raise errors.Mutability(f"{attr.name} is immutable")
    if attr.required and old is not None and new is None:
        raise errors.InvalidValue(f"{attr.name} is required")


def _lookup(mapping: dict, name: str, default: Any) -> Any:
    key = find_key(mapping, name)
    return default if key is None else mapping[key]
