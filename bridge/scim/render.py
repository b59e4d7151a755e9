"""Stored records as SCIM resources, with ``attributes``/``excludedAttributes`` (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.directory.stored import Record
from bridge.scim import errors
from bridge.scim.attributes import Attribute
from bridge.scim.resource_types import ResourceType

_ALWAYS = ("schemas", "id")

Selection = tuple[tuple[str, str | None], ...]
"""Attributes named in a projection: (top-level key, sub-attribute or None for all of it)."""


@dataclass(frozen=True)
class Projection:
    """Which attributes a response carries, parsed once per request."""

    include: Selection | None = None
    exclude: Selection = ()

    def wants(self, key: str) -> bool:
        """Whether top-level ``key`` is returned at all (used to skip loading members)."""
        if self.include is not None:
            return any(k == key for k, _ in self.include)
        return not any(k == key and s is None for k, s in self.exclude)


def parse_projection(
    attributes: str | None, excluded: str | None, rtype: ResourceType, *, known_only: bool = False
) -> Projection:
    """Parse the comma-separated query parameters into keys of the stored document.

    ``known_only`` skips names ``rtype`` lacks instead of refusing them: a search across
    resource types (RFC 7644 §3.4.3) names attributes of some types only.
    """
    include = _parse_list(attributes, rtype, known_only) if attributes else None
    exclude = _parse_list(excluded, rtype, known_only) if excluded and not attributes else ()
    return Projection(tuple(include) if include is not None else None, tuple(exclude))


def _parse_list(text: str, rtype: ResourceType, known_only: bool) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        resolved = rtype.resolve_path_text(name)
        if resolved is None and known_only:
            continue
        if resolved is None:
            raise errors.InvalidValue(f"unknown attribute '{name}' in attributes list")
        sub: str | None
        if resolved.is_extension:
            top = resolved.schema.id
            sub = resolved.attribute.name
        else:
            top = resolved.attribute.name
            sub = resolved.sub_attribute.name if resolved.sub_attribute else None
        out.append((top, sub))
    # an extension URN on its own names the whole extension object
    return out


def render(
    record: Record, rtype: ResourceType, base_url: str, projection: Projection
) -> dict[str, Any]:
    """The SCIM representation of ``record``: document, derived attributes and meta."""
    location = f"{base_url}{rtype.endpoint}/{record.id}"
    resource: dict[str, Any] = {"schemas": record.doc.get("schemas", [rtype.schema.id])}
    resource["id"] = record.id
    for key, value in record.doc.items():
        if key != "schemas":
            resource[key] = value
    if record.members is not None:
        resource["members"] = [_member(m, base_url) for m in record.members]
    if record.groups is not None:
        resource["groups"] = [
            {"value": gid, "$ref": f"{base_url}/Groups/{gid}", "type": "direct"}
            for gid in record.groups
        ]
    resource["meta"] = {
        "resourceType": rtype.id,
        "created": record.created,
        "lastModified": record.last_modified,
        "location": location,
        "version": record.etag,
    }
    return _project(resource, rtype, projection)


def _member(member: dict[str, Any], base_url: str) -> dict[str, Any]:
    out = dict(member)
    if out.get("$ref") is None:
        out["$ref"] = f"{base_url}/{'Users' if out['type'] == 'User' else 'Groups'}/{out['value']}"
    return out


def _project(
    resource: dict[str, Any], rtype: ResourceType, projection: Projection
) -> dict[str, Any]:
    if projection.include is None and not projection.exclude:
        return _returned_by_default(resource, rtype)
    out: dict[str, Any] = {}
    for key, value in resource.items():
        attr = _attribute(rtype, key)
        if attr is not None and attr.returned == "never":
            continue
        if key in _ALWAYS or (attr is not None and attr.returned == "always"):
            out[key] = value
            continue
        if projection.include is not None:
            picked = _pick(key, value, projection.include)
            if picked is not None:
                out[key] = picked
            continue
        if attr is not None and attr.returned == "request":
            continue
        dropped = _drop(key, value, projection.exclude)
        if dropped is not None:
            out[key] = dropped
    return out


def _returned_by_default(resource: dict[str, Any], rtype: ResourceType) -> dict[str, Any]:
    """What :func:`_project` keeps when a request names no attributes (most requests):
    every value but those ``returned`` never, or only on request (RFC 7643 §2.2)."""
    out: dict[str, Any] = {}
    for key, value in resource.items():
        attr = _attribute(rtype, key)
        if attr is not None and (
            attr.returned == "never" or (attr.returned == "request" and key not in _ALWAYS)
        ):
            continue
        if value is not None or key in _ALWAYS:
            out[key] = value
    return out


def _attribute(rtype: ResourceType, key: str) -> Attribute | None:
    if key.startswith("urn:"):
        return None
    resolved = rtype.resolve(None, key)
    return resolved.attribute if resolved else None


def _pick(key: str, value: Any, include: Selection) -> Any:
    subs = [s for k, s in include if k == key]
    if not subs:
        return None
    if None in subs:
        return value
    return _filter_subs(value, lambda sub: sub.lower() in {s.lower() for s in subs if s})


def _drop(key: str, value: Any, exclude: Selection) -> Any:
    subs = [s for k, s in exclude if k == key]
    if not subs:
        return value
    if None in subs:
        return None
    return _filter_subs(value, lambda sub: sub.lower() not in {s.lower() for s in subs if s})


def _filter_subs(value: Any, keep: Callable[[str], bool]) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if keep(k)} or None
    if isinstance(value, list):
        items = [
            {k: v for k, v in item.items() if keep(k)} for item in value if isinstance(item, dict)
        ]
        return [i for i in items if i] or None
    return value
