"""List queries (RFC 7644 §3.4.2): filter, sort, paginate, answered from indexes when possible."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bridge.directory.ids import is_id
from bridge.directory.records import Directory
from bridge.directory.stored import KIND_OF, Kind, Record
from bridge.scim import errors
from bridge.scim.attributes import Attribute
from bridge.scim.filter import Filter, indexed_equalities, parse_filter
from bridge.scim.filter_eval import check_filter, matches
from bridge.scim.resource_types import ResolvedPath, ResourceType

IndexLookup = Literal["id", "unique", "multi"]
"""How the directory finds records by a value: by id, a unique index or a multi-valued one."""

MAX_START_INDEX = 2**53 - 1
"""Largest ``startIndex`` honoured: any larger one is past every result, and this one still
fits a JSON number exactly (RFC 8259 §6) when the response echoes it."""


@dataclass(frozen=True)
class ListQuery:
    """The parameters of one list request, already validated."""

    filter: str | None = None
    start_index: int = 1
    count: int | None = None
    sort_by: str | None = None
    sort_order: str = "ascending"


@dataclass
class Page:
    """A page of one resource type's results, and how many matched in all."""

    total: int
    start_index: int
    records: list[Record]


def run(
    directory: Directory,
    rtype: ResourceType,
    query: ListQuery,
    *,
    max_results: int,
    members: bool,
    groups: bool,
) -> Page:
    """Evaluate ``query``: exact ``totalResults``, stable order (creation order by default)."""
    kind = KIND_OF[rtype.id]
    # RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count is 0.
    count = max_results if query.count is None else max(0, min(query.count, max_results))
    start = min(max(1, query.start_index), MAX_START_INDEX)
    node = parse_filter(query.filter) if query.filter else None
    if node is not None:
        check_filter(node, rtype)
    if node is None and query.sort_by is None:
        total = directory.count(kind)
        ids = directory.ids(kind, start - 1, start - 2 + count) if count and start <= total else []
        return Page(total, start, directory.get_many(kind, ids, members=members, groups=groups))
    needs_derived = node is not None and _mentions(query.filter or "", ("members", "groups"))
    matched = _matching(
        directory, kind, rtype, node, members or needs_derived, groups or needs_derived
    )
    if query.sort_by:
        matched = _sorted(matched, rtype, query.sort_by, query.sort_order)
    page = matched[start - 1 : start - 1 + count]
    if needs_derived and not (members or groups):
        for record in page:
            record.members = None
            record.groups = None
    return Page(len(matched), start, page)


@dataclass
class MixedPage:
    """A page of a search across resource types: each record with its type."""

    total: int
    start_index: int
    items: list[tuple[ResourceType, Record]]


def run_across(
    directory: Directory,
    rtypes: list[ResourceType],
    query: ListQuery,
    *,
    max_results: int,
    derived: Callable[[ResourceType], tuple[bool, bool]],
) -> MixedPage:
    """A query at the root (RFC 7644 §3.4.3): every resource type's matches, type after type.

    A type for which the filter names an unknown attribute has no matches; a filter no
    type can evaluate is invalidFilter. ``derived`` says, per type, whether members and
    groups are loaded.
    """
    count = max_results if query.count is None else max(0, min(query.count, max_results))
    start = min(max(1, query.start_index), MAX_START_INDEX)
    node = parse_filter(query.filter) if query.filter else None
    applicable = [rt for rt in rtypes if node is None or _evaluable(node, rt)]
    if node is not None and not applicable:
        check_filter(node, rtypes[0])  # raises the first type's InvalidFilter
    if node is None and query.sort_by is None:
        return _concatenated(directory, applicable, start, count, derived)
    pairs: list[tuple[ResourceType, Record]] = []
    needs = node is not None and _mentions(query.filter or "", ("members", "groups"))
    for rtype in applicable:
        members, groups = derived(rtype)
        kind = KIND_OF[rtype.id]
        matched = _matching(directory, kind, rtype, node, members or needs, groups or needs)
        for record in matched:
            if needs and not members:
                record.members = None
            if needs and not groups:
                record.groups = None
        pairs += [(rtype, r) for r in matched]
    if query.sort_by:
        pairs = _sorted_across(pairs, query.sort_by, query.sort_order)
    return MixedPage(len(pairs), start, pairs[start - 1 : start - 1 + count])


def _evaluable(node: Filter, rtype: ResourceType) -> bool:
    try:
        check_filter(node, rtype)
    except errors.InvalidFilter:
        return False
    return True


def _concatenated(
    directory: Directory,
    rtypes: list[ResourceType],
    start: int,
    count: int,
    derived: Callable[[ResourceType], tuple[bool, bool]],
) -> MixedPage:
    """Unfiltered, unsorted: creation order within each type, types one after the other."""
    total, skip = 0, start - 1
    items: list[tuple[ResourceType, Record]] = []
    for rtype in rtypes:
        kind = KIND_OF[rtype.id]
        size = directory.count(kind)
        wanted = count - len(items)
        if wanted > 0 and skip < size:
            members, groups = derived(rtype)
            ids = directory.ids(kind, skip, skip + wanted - 1)
            records = directory.get_many(kind, ids, members=members, groups=groups)
            items += [(rtype, r) for r in records]
        skip = max(0, skip - size)
        total += size
    return MixedPage(total, start, items)


def _matching(
    directory: Directory,
    kind: Kind,
    rtype: ResourceType,
    node: Filter | None,
    members: bool,
    groups: bool,
) -> list[Record]:
    records: Iterable[Record] | None = None
    if node is not None:
        records = _from_index(directory, kind, rtype, node, members, groups)
    if records is None:
        records = directory.scan(kind, members=members, groups=groups)
    if node is None:
        return list(records)
    return [r for r in records if matches(node, r.as_resource(), rtype)]


def _from_index(
    directory: Directory, kind: Kind, rtype: ResourceType, node: Filter, members: bool, groups: bool
) -> list[Record] | None:
    """Records that can possibly match, from an index; None when only a scan will do."""
    for path, value in indexed_equalities(node):
        resolved = rtype.resolve(path.urn, path.attr, path.sub_attr)
        if resolved is None or resolved.is_extension or not isinstance(value, str):
            continue
        lookup = _index_lookup(kind, resolved.attribute.name, resolved.sub_attribute, value)
        if lookup is not None:
            how, attr, key = lookup
            if how == "id" and not is_id(key):
                return []  # names no resource, and must not name another key
            return directory.find(kind, how, attr, key, members=members, groups=groups)
    return None


def _index_lookup(
    kind: str, name: str, sub: Attribute | None, value: str
) -> tuple[IndexLookup, str, str] | None:
    """(how, index attribute, key) for an equality the directory indexes."""
    sub_name = sub.name if sub is not None else None
    if name == "id":
        return "id", "", value
    if name == "externalId":
        return "unique", "externalId", value
    if kind == "user" and name == "userName":
        return "unique", "userName", value
    if kind == "user" and name == "emails" and sub_name in (None, "value"):
        return "multi", "email", value
    if kind == "group" and name == "displayName":
        return "unique", "displayName", value
    return None


def _mentions(text: str, names: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(n in lowered for n in names)


def _sorted(records: list[Record], rtype: ResourceType, sort_by: str, order: str) -> list[Record]:
    """RFC 7644 §3.4.2.3: missing values last when ascending, first when descending."""
    return [r for _, r in _sorted_across([(rtype, r) for r in records], sort_by, order)]


def _sorted_across(
    pairs: list[tuple[ResourceType, Record]], sort_by: str, order: str
) -> list[tuple[ResourceType, Record]]:
    """Records of one or more types by ``sort_by``; a type without it sorts as missing."""
    resolved = {
        rt.id: rt.resolve_path_text(sort_by) for rt in {rt.id: rt for rt, _ in pairs}.values()
    }
    if pairs and all(r is None for r in resolved.values()):
        raise errors.InvalidValue(f"cannot sort by unknown attribute '{sort_by}'")
    descending = order.lower() == "descending"

    def key(value: Any, attr: Attribute) -> tuple[str, Any]:
        """How a value sorts: as an instant, case-folded unless caseExact, by type first."""
        if isinstance(value, str):
            if attr.type == "dateTime":
                value = _instant(value)
            elif not attr.case_exact:
                value = value.casefold()
        return (type(value).__name__, value)  # values of different types never compare

    present: list[tuple[tuple[str, Any], tuple[ResourceType, Record]]] = []
    missing: list[tuple[ResourceType, Record]] = []
    for rtype, record in pairs:
        path = resolved[rtype.id]
        value = _sort_value(record.as_resource(), path) if path is not None else None
        if path is None or value is None:
            missing.append((rtype, record))
        else:
            present.append((key(value, path.target), (rtype, record)))
    present.sort(key=lambda pair: pair[0], reverse=descending)
    ordered = [pair for _, pair in present]
    return missing + ordered if descending else ordered + missing


def _sort_value(resource: dict[str, Any], resolved: ResolvedPath) -> Any:
    container = resource.get(resolved.schema.id, {}) if resolved.is_extension else resource
    value = container.get(resolved.attribute.name)
    if isinstance(value, list):
        primary = next((v for v in value if isinstance(v, dict) and v.get("primary")), None)
        value = primary or (value[0] if value else None)
    if resolved.sub_attribute is not None:
        return value.get(resolved.sub_attribute.name) if isinstance(value, dict) else None
    if isinstance(value, dict):
        return value.get("value")
    return value


def _instant(text: str) -> datetime | str:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
