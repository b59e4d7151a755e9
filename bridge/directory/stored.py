"""A stored record: the kinds of resource, the record type, and parsing what Redis holds.

A record is stored as ``"<header json>\\n<document json>"`` (header: v, c, m, ix); a
group's member entry as ``"<user|group>|<extras json>"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

Kind = Literal["user", "group"]
"""The two kinds of resource the directory holds."""

KINDS: tuple[Kind, ...] = ("user", "group")

KIND_OF: dict[str, Kind] = {"User": "user", "Group": "group"}
"""The directory's kind of each SCIM resource type."""


def as_kind(text: str) -> Kind:
    """``text`` as a Kind; ValueError when it names none."""
    if text == "user":
        return "user"
    if text == "group":
        return "group"
    raise ValueError(f"not a kind of resource: {text!r}")


@dataclass
class Record:
    """One stored resource: its document plus server-managed metadata."""

    kind: Kind
    id: str
    version: int
    created: str
    last_modified: str
    doc: dict[str, Any]
    members: list[dict[str, Any]] | None = None
    groups: list[str] | None = None

    @property
    def etag(self) -> str:
        """The record's weak entity tag (RFC 7232), from its version."""
        return f'W/"{self.version}"'

    def as_resource(self) -> dict[str, Any]:
        """What filters and mappings see: the document plus id, meta and derived attributes."""
        resource = dict(self.doc)
        resource["id"] = self.id
        resource["meta"] = {"created": self.created, "lastModified": self.last_modified}
        if self.members is not None:
            resource["members"] = self.members
        if self.groups is not None:
            resource["groups"] = [{"value": g} for g in self.groups]
        return resource


def parse_record(kind: Kind, rid: str, raw: bytes) -> Record:
    """A stored record's bytes back into a Record."""
    header, _, body = raw.partition(b"\n")
    h = orjson.loads(header)
    return Record(kind, rid, h["v"], h["c"], h["m"], orjson.loads(body))


def parse_member(mid: str, stored: str) -> dict[str, Any]:
    """A stored member entry back into a SCIM ``members`` value."""
    mkind, _, extras = stored.partition("|")
    member: dict[str, Any] = orjson.loads(extras) if extras else {}
    member["value"] = mid
    member["type"] = "User" if mkind == "user" else "Group"
    return member


def as_text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value
