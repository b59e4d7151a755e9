"""Applying PATCH operations (RFC 7644 §3.5.2.1-3) to a stored resource document.

Each operation names its target by path, by a whole extension URN, or (without a path)
by the keys of its value; values are coerced to the attribute's type, value filters
select elements of multi-valued attributes (creating the one a filter names when Entra
expects it), and immutable, required and read-only attributes are guarded.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from bridge.scim import errors
from bridge.scim.attributes import Attribute
from bridge.scim.filter_eval import matches_element
from bridge.scim.patch import PatchOperation, PatchOpName
from bridge.scim.paths import (
    PatchPath,
    coerce_element,
    coerce_value,
    delete_value,
    element_from_filter,
    get_value,
    is_hollow,
    merge_values,
    parse_patch_path,
    set_value,
    settle_primary,
    store_value,
)
from bridge.scim.resource_types import ResolvedPath, ResourceType
from bridge.scim.resources import copy_document

_SERVER_MANAGED = frozenset({"id", "meta", "schemas"})
"""Common attributes (RFC 7643 §3, §3.1) ignored when they appear in a path-less value."""


def apply_operations(
    resource: dict[str, Any], ops: list[PatchOperation], rtype: ResourceType
) -> bool:
    """Apply ``ops`` in order to ``resource`` in place; True iff it changed.

    On error the resource may be partly patched: callers pass a copy and drop it, which
    makes the request atomic (RFC 7644 §3.5.2).
    """
    before = copy_document(resource)
    patcher = _Patcher(resource, rtype)
    for op in ops:
        patcher.apply(op)
    patcher.declare_extensions()
    return resource != before


class _Patcher:
    """Applies single operations to one resource document."""

    def __init__(self, resource: dict[str, Any], rtype: ResourceType) -> None:
        self.resource = resource
        self.rtype = rtype
        self.extensions_written: set[str] = set()

    def apply(self, op: PatchOperation) -> None:
        """Apply one operation to the document."""
        if "path" not in op:
            self._apply_pathless(op["op"], op["value"])
        elif (schema := self.rtype.extension(op["path"])) is not None:
            self._apply_extension(op["op"], schema.id, op.get("value"))
        else:
            self._apply_path(op["op"], parse_patch_path(op["path"], self.rtype), op.get("value"))

    def _apply_extension(self, kind: PatchOpName, urn: str, value: Any) -> None:
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

    def _apply_pathless(self, kind: PatchOpName, value: Any) -> None:
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

    def _apply_key(self, kind: PatchOpName, key: str, item: Any) -> None:
        path = parse_patch_path(key, self.rtype)
        if path.attribute.name in _SERVER_MANAGED and not path.resolved.is_extension:
            return
        if item is not None:
            self._apply_path(kind, path, item)
        elif kind == "replace":
            self._apply_path("remove", path, None)

    def _apply_path(self, kind: PatchOpName, path: PatchPath, value: Any) -> None:
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

    def _container(self, resolved: ResolvedPath, create: bool) -> dict[str, Any] | None:
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

    def _on_elements(
        self, kind: PatchOpName, path: PatchPath, container: dict[str, Any], value: Any
    ) -> None:
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


def _on_attribute(
    kind: PatchOpName, attr: Attribute, container: dict[str, Any], value: Any
) -> None:
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
    kind: PatchOpName, attr: Attribute, sub: Attribute, container: dict[str, Any], value: Any
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
    attr: Attribute, sub: Attribute | None, elements: list[Any], matched: list[dict[str, Any]]
) -> list[Any]:
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
