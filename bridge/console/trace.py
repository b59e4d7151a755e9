"""Finding users and groups, and a resource's trace across the targets.

The trace answers "why does Ada not exist in the CRM?": for each target, whether its
scope takes the resource and why (all, group X, filter), the target's id for it, the last
delivery (when, what, outcome, HTTP status), and whether a delivery is pending, held or
dead-lettered. It reads the same bookkeeping the relay writes (bridge.delivery.deliveries)
and decides scope with the relay's own planner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.delivery.deliveries import LOG_LENGTH, Deliveries
from bridge.delivery.pending import item
from bridge.delivery.planning import Planner, group_in_scope
from bridge.directory.records import Directory
from bridge.directory.stored import KINDS, Kind, Record
from bridge.runtime.services import Services
from bridge.targets.mapping import MappingError
from bridge.targets.model import Target

SEARCH_FIELDS = ("any", "userName", "email", "externalId", "group")
"""What the directory search looks in (``any``: all of them, and ids)."""

SCAN_LIMIT = 20_000
"""Records a search that no index answers looks through at most (a substring search)."""

MAX_RESULTS = 50


_LOOKUPS: dict[str, list[tuple[Kind, str, str]]] = {
    "userName": [("user", "unique", "userName")],
    "email": [("user", "multi", "email")],
    "externalId": [("user", "unique", "externalId"), ("group", "unique", "externalId")],
    "group": [("group", "unique", "displayName")],
    "any": [
        ("user", "id", "id"),
        ("group", "id", "id"),
        ("user", "unique", "userName"),
        ("user", "multi", "email"),
        ("user", "unique", "externalId"),
        ("group", "unique", "displayName"),
        ("group", "unique", "externalId"),
    ],
}
"""Index lookups per search field, in the order their answers are listed."""


def search(directory: Directory, query: str, by: str = "any") -> list[Record]:
    """Users and groups whose indexed attribute is ``query`` exactly (index lookups), or,
    when none is, whose userName, e-mail or displayName contains it (a bounded scan)."""
    query = query.strip()
    if not query:
        return []
    lookups: list[tuple[Kind, str, str]] = _LOOKUPS.get(by) or _LOOKUPS["any"]
    found: dict[tuple[str, str], Record] = {}
    for kind, how, attr in lookups:
        for record in directory.find(kind, how, attr, query):
            found.setdefault((record.kind, record.id), record)
    if found or by == "externalId":
        return list(found.values())[:MAX_RESULTS]
    return _scan(directory, query.casefold(), by)


def _scan(directory: Directory, needle: str, by: str) -> list[Record]:
    """Records whose names (or e-mail addresses) contain ``needle``: at most SCAN_LIMIT
    looked at, MAX_RESULTS returned."""
    kinds: tuple[Kind, ...] = {"any": KINDS, "group": ("group",)}.get(by, ("user",))
    out: list[Record] = []
    looked = 0
    for kind in kinds:
        for record in directory.scan(kind):
            looked += 1
            if needle in " ".join(_texts(record, by)).casefold():
                out.append(record)
            if len(out) >= MAX_RESULTS or looked >= SCAN_LIMIT:
                return out
    return out


def _texts(record: Record, by: str) -> list[str]:
    doc = record.doc
    if record.kind == "group":
        return [str(doc.get("displayName") or "")]
    texts = []
    if by in ("any", "userName"):
        texts.append(str(doc.get("userName") or ""))
    if by in ("any", "email"):
        texts += [str(e.get("value")) for e in doc.get("emails") or [] if isinstance(e, dict)]
    return texts


@dataclass
class TargetTrace:
    """One target's view of one resource."""

    target_id: str
    target_name: str
    enabled: bool
    shadow: bool
    receives: bool
    in_scope: bool
    why: str
    remote_id: str | None = None
    present: bool = False
    active: bool | None = None
    last: dict[str, Any] | None = None
    pending: list[str] = field(default_factory=list)
    held: dict[str, Any] | None = None
    dead: dict[str, Any] | None = None


def trace(state: Services, record: Record) -> list[TargetTrace]:
    """The resource's trace across every target, by target name."""
    planner = Planner(state.resource_types)
    group_names = _group_names(state.directory, state.targets.configs())
    out = []
    for config in state.targets.configs():
        try:
            target = Target.from_config(config, state.resource_types)
        except (MappingError, KeyError, ValueError):
            continue  # a target the relay could not use either; its page says why
        receives = target.receives(record.kind)
        in_scope, why = _scope(planner, target, record, group_names)
        row = TargetTrace(
            target.id,
            target.name,
            target.enabled,
            target.shadow,
            receives,
            receives and in_scope,
            why if receives else f"does not receive {record.kind}s",
        )
        _books(state.deliveries, row, record)
        out.append(row)
    return sorted(out, key=lambda t: t.target_name)


def _scope(
    planner: Planner, target: Target, record: Record, names: dict[str, str]
) -> tuple[bool, str]:
    """Whether the target's scope takes the resource, and why, in words."""
    kind = target.scope_type
    if record.kind == "group":
        if kind != "groups":
            return True, "all groups (the scope limits users only)"
        if group_in_scope(target, record.id):
            return True, "a scoping group"
        return False, "not one of the scoping groups"
    if kind == "all":
        return True, "all users"
    if kind == "groups":
        shared = sorted(target.scope_groups.intersection(record.groups or ()))
        if shared:
            return True, "member of group " + ", ".join(names.get(g, g) for g in shared)
        wanted = ", ".join(sorted(names.get(g, g) for g in target.scope_groups))
        return False, f"not a member of any scoping group ({wanted})"
    filter_text = target.scope.get("filter", "")
    if planner.in_scope(target, record):
        return True, f"matches the filter {filter_text}"
    return False, f"does not match the filter {filter_text}"


def _group_names(directory: Directory, configs: list[dict[str, Any]]) -> dict[str, str]:
    """displayName of every group a scope names, in one round trip."""
    ids = sorted({g for c in configs for g in (c.get("scope") or {}).get("groups") or ()})
    return {g.id: str(g.doc.get("displayName") or g.id) for g in directory.get_many("group", ids)}


def _books(deliveries: Deliveries, row: TargetTrace, record: Record) -> None:
    """Fill in the target's bookkeeping of the resource, in one round trip."""
    it = item(record.kind, record.id)
    t = row.target_id
    pipe = deliveries.redis.pipeline(transaction=False)
    pipe.hget(deliveries.key(t, "state"), it)
    pipe.sismember(deliveries.key(t, "pending:changes"), it)
    pipe.sismember(deliveries.key(t, "pending:deprovision"), it)
    pipe.hget(deliveries.key(t, "held"), it)
    pipe.hget(deliveries.key(t, "dead"), it)
    state, changes, deprovision, held, dead = pipe.execute()
    if state:
        parsed = orjson.loads(state)
        row.remote_id = parsed.get("remote_id")
        row.present = bool(parsed.get("present"))
        row.active = parsed.get("active") if record.kind == "user" else None
    row.pending = [lane for lane, on in (("changes", changes), ("deprovision", deprovision)) if on]
    row.held = orjson.loads(held) if held else None
    row.dead = orjson.loads(dead) if dead else None
    row.last = next(
        (
            e
            for e in deliveries.log(t, LOG_LENGTH)
            if e.get("id") == record.id and e.get("kind") == record.kind
        ),
        None,
    )
