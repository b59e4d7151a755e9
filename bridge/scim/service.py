"""SCIM resource operations (RFC 7644 §3.3–3.6) on top of the directory.

Protocol apart from storage: this module parses, validates and applies changes; the
directory persists complete records atomically and enforces uniqueness.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.directory.ids import is_id
from bridge.directory.indexes import index_values
from bridge.directory.records import Directory, MemberUpdate, VersionMismatch, WriteResult
from bridge.directory.stored import KIND_OF, Kind, Record
from bridge.scim import errors
from bridge.scim.patch import parse_operations
from bridge.scim.patch_apply import apply_operations
from bridge.scim.patch_members import MemberChanges, split_member_operations
from bridge.scim.resource_types import ResourceType
from bridge.scim.resources import copy_document, member_extras, normalise, shorten

WRITE_RETRIES = 20
"""Times a read-modify-write is tried when other requests change the record meanwhile."""

RETRY_PAUSE_SECONDS = 0.002
"""Longest pause before the second try; it doubles with each try, and each pause is drawn
at random below it (full jitter), so racing writers stop colliding."""

RETRY_PAUSE_MAX_SECONDS = 0.05
"""Longest pause between two tries: all of them together stay under a second."""


def now() -> str:
    """The current instant as RFC 3339 with milliseconds, as ``meta`` shows it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class WriteOutcome:
    """A write's result: the record as now stored (members/groups when known), or only
    its version when the write touched nothing but memberships."""

    record: Record | None
    changed: bool
    version: int = 0

    @property
    def etag(self) -> str:
        """The ETag of the version written: the record's, or one made from ``version``."""
        return self.record.etag if self.record else f'W/"{self.version}"'


class ResourceService:
    """Create, read, replace, patch and delete one resource type."""

    def __init__(
        self, directory: Directory, rtype: ResourceType, *, write_retries: int = WRITE_RETRIES
    ) -> None:
        self.directory = directory
        self.rtype = rtype
        self.kind = KIND_OF[rtype.id]
        self.write_retries = write_retries

    def get(self, rid: str, *, members: bool = False, groups: bool = False) -> Record:
        """GET (RFC 7644 §3.4.1): the stored record, with members or groups when asked."""
        self._check_id(rid)
        return self.directory.get(self.kind, rid, members=members, groups=groups)

    def create(self, body: object) -> WriteOutcome:
        """POST (RFC 7644 §3.3): the id is assigned here; uniqueness is checked atomically."""
        doc, members = normalise(body, self.rtype)
        update = self._member_replace(members) if members else None
        stamp = now()
        rid, result = self.directory.create(
            self.kind, doc, index_values(self.kind, doc), stamp, update
        )
        record = _record(self.kind, rid, result, doc)
        if self.kind == "group":
            record.members = self._listed(members or [])
        else:
            record.groups = []
        return WriteOutcome(record, True)

    def replace(self, rid: str, body: object, if_match: int | None) -> WriteOutcome:
        """PUT (RFC 7644 §3.5.1): replaces every writable attribute; immutable ones must match."""
        self._check_id(rid)
        doc, members = normalise(body, self.rtype)
        is_group = self.kind == "group"

        def prepare(current: Record) -> tuple[dict[str, Any], bool, MemberUpdate | None]:
            """The new document replaces the current one whole; immutable values must match."""
            self._check_immutable(current.doc, doc)
            return doc, True, self._member_replace(members or []) if is_group else None

        outcome = self._read_modify_write(rid, if_match, prepare)
        if is_group and outcome.record is not None:
            outcome.record.members = self._listed(members or [])
        return outcome

    def patch(self, rid: str, body: object, if_match: int | None) -> WriteOutcome:
        """PATCH (RFC 7644 §3.5.2). A membership-only group change returns no record."""
        self._check_id(rid)
        if not isinstance(body, dict):
            raise errors.InvalidSyntax("the request body must be a JSON object")
        ops = parse_operations(body)
        doc_ops, changes = split_member_operations(ops, self.rtype)
        update = self._member_changes(changes) if not changes.empty else None
        if not doc_ops:
            result = self.directory.update(
                self.kind, rid, expect=if_match, now=now(), members=update
            )
            return WriteOutcome(None, result.changed, result.version)

        def prepare(current: Record) -> tuple[dict[str, Any], bool, MemberUpdate | None]:
            """The current document with the operations applied to a copy of it."""
            doc = copy_document(current.doc)
            changed = apply_operations(doc, doc_ops, self.rtype)
            if changed:
                doc, _ = normalise(doc, self.rtype)
            return doc, changed, update

        return self._read_modify_write(rid, if_match, prepare)

    def _read_modify_write(
        self,
        rid: str,
        if_match: int | None,
        prepare: Callable[[Record], tuple[dict[str, Any], bool, MemberUpdate | None]],
    ) -> WriteOutcome:
        """Read, change, and write only if nobody wrote meanwhile (the version is the
        check); retried on a race, except when the client named the version (If-Match)."""
        for attempt in range(self.write_retries):
            if attempt:
                pause = min(RETRY_PAUSE_MAX_SECONDS, RETRY_PAUSE_SECONDS * 2 ** (attempt - 1))
                time.sleep(random.uniform(0, pause))
            current = self.get(rid, groups=self.kind == "user")
            self._check_version(current, if_match)
            doc, doc_changed, update = prepare(current)
            try:
                result = self.directory.update(
                    self.kind,
                    rid,
                    expect=current.version,
                    now=now(),
                    doc=doc if doc_changed else None,
                    index=index_values(self.kind, doc) if doc_changed else None,
                    members=update,
                )
            except VersionMismatch:
                if if_match is not None:
                    raise
                continue
            record = _record(self.kind, rid, result, doc)
            record.groups = current.groups
            return WriteOutcome(record, result.changed)
        raise errors.ConcurrentModification(
            f"the resource changed {self.write_retries} times while this request was applied; retry"
        )

    def delete(self, rid: str, if_match: int | None) -> None:
        """DELETE (RFC 7644 §3.6): gone from every group too."""
        self._check_id(rid)
        self.directory.delete(self.kind, rid, expect=if_match, now=now())

    # --- helpers --------------------------------------------------------------------------
    def _check_id(self, rid: str) -> None:
        """An id the directory never made names nothing: 404 before any Redis call."""
        if not is_id(rid):
            raise errors.NotFound(f"{self.rtype.name} {shorten(rid)} not found")

    def _check_version(self, current: Record, if_match: int | None) -> None:
        if if_match is not None and if_match != current.version:
            raise VersionMismatch(current.version)

    def _check_immutable(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        for attr in self.rtype.schema.attributes:
            if attr.mutability == "immutable" and attr.name in old and attr.name in new:
                if old[attr.name] != new[attr.name]:
                    raise errors.Mutability(f"{attr.name} is immutable")

    def _member_replace(self, members: Sequence[Mapping[str, Any]]) -> MemberUpdate:
        return MemberUpdate(add={m["value"]: member_extras(m) for m in members}, replace=True)

    def _member_changes(self, changes: MemberChanges) -> MemberUpdate:
        if changes.replace is not None:
            add = {m["value"]: member_extras(m) for m in changes.replace}
            add.update({m["value"]: member_extras(m) for m in changes.add})
            return MemberUpdate(add=add, remove=list(changes.remove), replace=True)
        return MemberUpdate(
            add={m["value"]: member_extras(m) for m in changes.add}, remove=list(changes.remove)
        )

    def _listed(self, members: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        kinds = self.directory.existing(m["value"] for m in members) if members else {}
        seen: dict[str, dict[str, Any]] = {}
        for m in members:
            entry = member_extras(m)
            entry["value"] = m["value"]
            entry["type"] = "User" if kinds.get(m["value"]) == "user" else "Group"
            seen[m["value"]] = entry
        return list(seen.values())


def _record(kind: Kind, rid: str, result: WriteResult, doc: dict[str, Any]) -> Record:
    return Record(kind, rid, result.version, result.created, result.last_modified, doc)
