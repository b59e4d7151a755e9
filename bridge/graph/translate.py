"""Microsoft Graph objects as SCIM attributes, per Entra's default provisioning mapping.

A mapping is ``{SCIM attribute path: Graph property}``. The defaults follow the attribute
mapping Entra's provisioning service applies to a SCIM application; an operator can
override or extend them (BRIDGE_GRAPH_USER_MAPPING / BRIDGE_GRAPH_GROUP_MAPPING, JSON).
``manager`` is special: Graph gives the manager's object id, the directory wants the
manager's id in the bridge.

The SCIM paths are PATCH paths (RFC 7644 §3.5.2), parsed and resolved against the
resource type by :func:`bridge.scim.paths.parse_patch_path` when a
:class:`ResourceMapping` is made, so a path the directory does not know fails then, not on
every object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from bridge.graph.settings import GraphSettings
from bridge.scim import urns
from bridge.scim.errors import ScimError
from bridge.scim.filter_eval import is_present, matches_element
from bridge.scim.paths import PatchPath, element_from_filter, get_value, parse_patch_path
from bridge.scim.resource_types import ResourceType

GraphObject: TypeAlias = dict[str, Any]
"""A Graph object as Graph's JSON: camelCase properties, ``@removed``, ``members@delta``."""

ENTERPRISE = urns.ENTERPRISE_USER
USER_SCHEMA = urns.USER
GROUP_SCHEMA = urns.GROUP

MANAGER = "manager"
"""The Graph property that names another user: mapped to that user's id in the bridge."""

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
    f"{ENTERPRISE}:manager": MANAGER,
}
"""Entra's default user attribute mapping for SCIM applications."""

DEFAULT_GROUP_MAPPING: dict[str, str] = {
    "displayName": "displayName",
    "externalId": "id",
}
"""Entra's default group mapping: ``objectId`` → ``externalId``; members are separate."""


class TranslationError(ValueError):
    """A configured mapping names a SCIM path the directory cannot store a Graph value at."""


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


def manager_of(graph_user: GraphObject) -> str | None:
    """The Graph object id of a user's manager, from ``manager`` or ``manager@odata.bind``."""
    manager = graph_user.get(MANAGER)
    if isinstance(manager, dict):
        return manager.get("id")
    return None


@dataclass(frozen=True)
class MappedPath:
    """One mapping entry: the SCIM path as configured, parsed, and its Graph property."""

    text: str
    path: PatchPath
    prop: str

    def read(self, doc: dict[str, Any]) -> Any:
        """The value at this path in a stored document; None when there is none."""
        resolved = self.path.resolved
        container = get_value(doc, resolved.schema.id) if resolved.is_extension else doc
        if not isinstance(container, dict):
            return None
        raw = get_value(container, resolved.attribute.name)
        sub = self.path.sub_attr
        if self.path.value_filter is not None:
            elements = raw if isinstance(raw, list) else []
            for element in elements:
                if isinstance(element, dict) and matches_element(
                    self.path.value_filter, element, resolved.attribute
                ):
                    return get_value(element, sub.name) if sub else element
            return None
        if sub is not None:
            return get_value(raw, sub.name) if isinstance(raw, dict) else None
        return raw

    def write(self, body: dict[str, Any], value: Any) -> None:
        """Set this path to ``value`` in a resource body being built."""
        resolved = self.path.resolved
        container = body
        if resolved.is_extension:
            urn = resolved.schema.id
            container = body.setdefault(urn, {})
            if urn not in body["schemas"]:
                body["schemas"].append(urn)
        attr, sub = resolved.attribute, self.path.sub_attr
        if self.path.value_filter is not None and sub is not None:
            elements = container.setdefault(attr.name, [])
            element = next(
                (e for e in elements if matches_element(self.path.value_filter, e, attr)), None
            )
            if element is None:
                element = element_from_filter(self.path)
                elements.append(element)
            element[sub.name] = value
        elif sub is not None:
            container.setdefault(attr.name, {})[sub.name] = value
        else:
            container[attr.name] = value

    @property
    def top_level(self) -> str | None:
        """The core attribute's name when the path names one whole (``userName``)."""
        resolved = self.path.resolved
        if resolved.is_extension or self.path.sub_attr or self.path.value_filter:
            return None
        return resolved.attribute.name


class ResourceMapping:
    """One resource type's mapping, its paths resolved against the resource type."""

    def __init__(self, mapping: dict[str, str], rtype: ResourceType) -> None:
        self.schema = rtype.schema.id
        self.paths = {text: _mapped_path(text, prop, rtype) for text, prop in mapping.items()}
        self.required = tuple(
            a.name for a in rtype.schema.attributes if a.required and a.mutability != "readOnly"
        )
        """Core attributes a resource cannot be created without (``userName``, …)."""

    def select(self, *extra: str) -> list[str]:
        """The Graph properties to ``$select``."""
        return graph_select({m.text: m.prop for m in self.paths.values()}, *extra)

    def prop(self, attribute: str) -> str | None:
        """The Graph property mapped to a core attribute (``userName``), if any."""
        folded = attribute.casefold()
        for mapped in self.paths.values():
            if (mapped.top_level or "").casefold() == folded:
                return mapped.prop
        return None

    def values(self, obj: GraphObject, manager_id: str | None = None) -> dict[str, Any]:
        """``{SCIM path: value}`` for one Graph object; None where Graph has no value, and no
        entry for a property the object does not carry.

        ``manager_id`` is the bridge id of the object's manager, when it has one.
        """
        out: dict[str, Any] = {}
        for text, mapped in self.paths.items():
            if mapped.prop not in obj:
                continue  # a delta round may carry only the properties that changed
            if mapped.prop == MANAGER:
                out[text] = {"value": manager_id} if manager_id else None
                continue
            value = obj.get(mapped.prop)
            out[text] = None if value in ("", []) else value
        return out

    def partial(self, obj: GraphObject) -> bool:
        """Whether the object lacks a mapped property: an incremental delta round carries
        only "at least the updated properties". ``manager`` comes only when there is one."""
        return any(m.prop not in obj for m in self.paths.values() if m.prop != MANAGER)

    def unmapped_required(self, values: dict[str, Any]) -> list[str]:
        """The required attributes that ``values`` (from :meth:`values`) leave without a value,
        each as ``attribute (from graphProperty)``."""
        missing = []
        for name in self.required:
            mapped = next((m for m in self.paths.values() if m.top_level == name), None)
            if mapped is None:
                missing.append(f"{name} (not mapped)")
            elif not is_present(values.get(mapped.text)):
                missing.append(f"{name} (from {mapped.prop})")
        return missing

    def body(self, values: dict[str, Any]) -> dict[str, Any]:
        """A SCIM resource body from ``{path: value}``, for a create."""
        body: dict[str, Any] = {"schemas": [self.schema]}
        for text, value in values.items():
            if value is not None:
                self.paths[text].write(body, value)
        return body

    def diff(self, doc: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
        """PATCH operations (RFC 7644 §3.5.2) that bring ``doc`` to the mapped ``values``."""
        ops: list[dict[str, Any]] = []
        for text, wanted in values.items():
            if _same(self.paths[text].read(doc), wanted):
                continue
            if wanted is None:
                ops.append({"op": "remove", "path": text})
            else:
                ops.append({"op": "replace", "path": text, "value": wanted})
        return ops


def _mapped_path(text: str, prop: str, rtype: ResourceType) -> MappedPath:
    try:
        path = parse_patch_path(text, rtype)
    except ScimError as exc:
        raise TranslationError(f"{rtype.name} mapping {text!r}: {exc.detail}") from exc
    attr = path.attribute
    if path.attribute.mutability == "readOnly" or (
        path.sub_attr is not None and path.sub_attr.mutability == "readOnly"
    ):
        raise TranslationError(f"{rtype.name} mapping {text!r}: the attribute is read-only")
    if attr.multi_valued and (path.value_filter is None or path.sub_attr is None):
        raise TranslationError(
            f"{rtype.name} mapping {text!r}: name one sub-attribute of one element, "
            f'as in emails[type eq "work"].value'
        )
    if path.value_filter is not None:
        try:
            element_from_filter(path)
        except ScimError as exc:
            raise TranslationError(
                f"{rtype.name} mapping {text!r}: the filter must say which element "
                f"(sub-attribute eq value): {exc.detail}"
            ) from exc
    return MappedPath(text, path, prop)


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict) and isinstance(current, dict):
        return current.get("value") == wanted.get("value")
    if current is None or wanted is None:
        return current is None and wanted is None
    return bool(current == wanted)


def load_config(settings: GraphSettings) -> Config:
    """The mappings in force: defaults, overridden by the configured JSON files.

    A file maps SCIM paths to Graph properties; a path mapped to null is dropped.
    """
    user = _merged(DEFAULT_USER_MAPPING, settings.user_mapping_file)
    group = _merged(DEFAULT_GROUP_MAPPING, settings.group_mapping_file)
    return Config(user, group, settings.matching_attribute or "userName")


def _merged(defaults: dict[str, str], path: str | None) -> dict[str, str]:
    merged = dict(defaults)
    if path:
        try:
            overrides = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise TranslationError(f"cannot read the mapping file {path}: {exc}") from exc
        if not isinstance(overrides, dict):
            raise TranslationError(f"{path}: expected a JSON object of SCIM path: Graph property")
        for key, prop in overrides.items():
            if prop is None:
                merged.pop(key, None)
            elif isinstance(prop, str):
                merged[key] = prop
            else:
                raise TranslationError(f"{path}: {key!r} must map to a Graph property name or null")
    return merged
