"""Resource types (RFC 7643 §6) and which attribute definition a name or path resolves to.

A :class:`ResourceType` is an endpoint with a core schema and its extensions;
:meth:`ResourceType.resolve` and :meth:`ResourceType.resolve_path_text` turn the names
clients write (``userName``, ``name.givenName``, ``urn:...:enterprise:2.0:User:manager``)
into a :class:`ResolvedPath`, consulting the common attributes (RFC 7643 §3.1) first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from bridge.scim import urns
from bridge.scim.attributes import ATTR_NAME, Attribute, Schema, by_name
from bridge.scim.core_schemas import COMMON_ATTRIBUTES, CORE_GROUP, CORE_USER, ENTERPRISE_USER

RESOURCE_TYPE_SCHEMA = urns.RESOURCE_TYPE

MEMO_LIMIT = 4096
"""Resolved paths a resource type remembers before it starts over (client input varies)."""

_COMMON = by_name(COMMON_ATTRIBUTES)

_MemoKey = tuple[str | None, ...]
"""``(URN, attribute, sub-attribute)`` as written, or ``("text", path)`` for path text."""


@dataclass(frozen=True)
class ResolvedPath:
    """Where an attribute path points: the defining schema and attribute definitions.

    ``extension`` is set by :meth:`ResourceType.resolve` when ``schema`` is one of the
    resource type's extensions rather than its core schema.
    """

    schema: Schema
    attribute: Attribute
    sub_attribute: Attribute | None
    extension: bool = False

    @property
    def is_extension(self) -> bool:
        """True when the attribute lives under the extension's URN key in a resource."""
        return self.extension

    @property
    def target(self) -> Attribute:
        """The innermost attribute the path names."""
        return self.sub_attribute or self.attribute


@dataclass(frozen=True)
class ResourceType:
    """A resource type (RFC 7643 §6): endpoint, core schema and extensions."""

    id: str
    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...]

    def schema_ids(self) -> tuple[str, ...]:
        """The core schema URN followed by the extension URNs."""
        return (self.schema.id, *(s.id for s, _ in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        """The extension schema with this URN, compared case-insensitively."""
        return self._extensions_by_urn.get(urn.casefold())

    @cached_property
    def _extensions_by_urn(self) -> dict[str, Schema]:
        # asked for every key of every body and PATCH value; the first of equal URNs wins
        return {s.id.casefold(): s for s, _ in reversed(self.extensions)}

    def resolve(
        self, urn: str | None, attr: str, sub_attr: str | None = None
    ) -> ResolvedPath | None:
        """Find an attribute (and sub-attribute) by name; None if the type lacks it.

        ``urn=None`` or the core URN means the core schema, where the common attributes
        (RFC 7643 §3.1) are found too. Answers are remembered by the names as written:
        every request resolves the same few paths, spelled the same way, so a repeat
        costs one lookup and no case folding.
        """
        key = (urn, attr, sub_attr)
        memo = self._memo
        try:
            return memo[key]
        except KeyError:  # None is an answer too: the type lacks the attribute
            if len(memo) > MEMO_LIMIT:
                memo.clear()
            found = memo[key] = self._resolve(urn, attr, sub_attr)
            return found

    @cached_property
    def _memo(self) -> dict[_MemoKey, ResolvedPath | None]:
        return {}

    def _resolve(self, urn: str | None, attr: str, sub_attr: str | None) -> ResolvedPath | None:
        if urn is None or urn.casefold() == self.schema.id.casefold():
            schema, extension = self.schema, False
            found = _COMMON.get(attr.casefold()) or schema.attribute(attr)
        else:
            ext = self.extension(urn)
            if ext is None:
                return None
            schema, extension = ext, True
            found = ext.attribute(attr)
        if found is None:
            return None
        sub = None
        if sub_attr is not None:
            sub = found.sub(sub_attr)
            if sub is None:
                return None
        return ResolvedPath(schema, found, sub, extension)

    def resolve_path_text(self, text: str) -> ResolvedPath | None:
        """Resolve ``attr``, ``attr.sub`` or either one prefixed by a known schema URN."""
        memo = self._memo
        key = ("text", text)
        if key not in memo:
            if len(memo) > MEMO_LIMIT:
                memo.clear()
            memo[key] = self._resolve_text(text)
        return memo[key]

    def _resolve_text(self, text: str) -> ResolvedPath | None:
        urn = None
        folded = text.casefold()
        for schema_id in sorted(self.schema_ids(), key=len, reverse=True):
            if folded.startswith(schema_id.casefold() + ":"):
                urn, text = schema_id, text[len(schema_id) + 1 :]
                break
        attr, dot, sub = text.partition(".")
        if not ATTR_NAME.match(attr) or (dot and not ATTR_NAME.match(sub)):
            return None
        return self.resolve(urn, attr, sub if dot else None)

    def to_scim(self, base_url: str) -> dict[str, Any]:
        """The RFC 7643 §6 ResourceType resource."""
        return {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": [
                {"schema": s.id, "required": required} for s, required in self.extensions
            ],
            "meta": {
                "resourceType": "ResourceType",
                "location": f"{base_url.rstrip('/')}/ResourceTypes/{self.id}",
            },
        }


def build_resource_types(
    extra_user_extensions: Iterable[Schema] = (),
    extra_group_extensions: Iterable[Schema] = (),
) -> dict[str, ResourceType]:
    """The User and Group resource types, with any configured extension schemas."""
    user_ext = ((ENTERPRISE_USER, False), *((s, False) for s in extra_user_extensions))
    group_ext = tuple((s, False) for s in extra_group_extensions)
    for core, extensions in ((CORE_USER, user_ext), (CORE_GROUP, group_ext)):
        ids = [core.id.casefold(), *(s.id.casefold() for s, _ in extensions)]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate schema URN among the {core.name} extensions")
    return {
        "User": ResourceType("User", "User", "/Users", "User Account", CORE_USER, user_ext),
        "Group": ResourceType("Group", "Group", "/Groups", "Group", CORE_GROUP, group_ext),
    }
