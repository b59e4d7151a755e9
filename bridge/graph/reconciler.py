"""Reconcile the directory with Entra ID through Microsoft Graph.

Entra is the source of truth. A run reads the objects in scope (the users and groups
assigned to the enterprise application, or configured groups) through delta queries,
compares them with the directory and classifies the drift:

- ``missing``: in scope in Entra, absent from the directory → created;
- ``unassigned``: in the directory, but out of scope or deleted in Entra → users disabled,
  groups deleted (held for an admin when there are too many: the deletion guard);
- ``attributes``: mapped attributes differ → patched;
- ``membership``: group members differ → members added or removed.

The parts: :mod:`~bridge.graph.scope` tracks who is in scope, :mod:`~bridge.graph.matching`
finds the record that stands for a Graph object, :mod:`~bridge.graph.translate` maps and
compares, :mod:`~bridge.graph.writes` heals, :mod:`~bridge.graph.guard` holds mass
deprovisions, :mod:`~bridge.graph.report` counts. Every heal is a SCIM write through
ResourceService, so it is stored and announced like a push from Entra.

A dry run computes the same drift as a real run and stores nothing but its run record:
links, delta links and held members go to in-memory overlays, and its writes only
pretend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge.directory.records import Directory
from bridge.directory.stored import Record
from bridge.graph.errors import DeltaExpired
from bridge.graph.guard import DeletionGuard, Deprovisions, Doomed
from bridge.graph.links import DryRunLinks, Links
from bridge.graph.matching import Matcher
from bridge.graph.report import Cancelled, Drift, Progress
from bridge.graph.runs import Runs
from bridge.graph.scope import DryRunMembers, ScopeMembers, ScopeTracker, is_user
from bridge.graph.settings import DEFAULT_GUARD_MAX, DEFAULT_GUARD_SHARE
from bridge.graph.translate import MANAGER, Config, GraphObject, ResourceMapping, manager_of
from bridge.graph.writes import DryRunWrites, Writes
from bridge.scim.resource_types import ResourceType

if TYPE_CHECKING:
    from bridge.graph.source import GraphSource

__all__ = ["Cancelled", "Options", "Reconciler"]

log = logging.getLogger(__name__)

GROUP_BATCH = 100
"""Groups matched and read from the directory per round trip."""


@dataclass(frozen=True)
class Options:
    """How a run behaves."""

    dry_run: bool = False
    """Report the drift, change nothing."""
    confirmed: bool = False
    """An admin confirmed this run's deprovisions: the deletion guard does not stop it."""
    guard_max: int = DEFAULT_GUARD_MAX
    guard_share: float = DEFAULT_GUARD_SHARE
    """A run deprovisioning more than guard_max objects, or more than this share of the
    directory, stops and waits for an admin's confirmation."""


class Reconciler:
    """One reconciliation run over one scope."""

    def __init__(
        self,
        directory: Directory,
        resource_types: dict[str, ResourceType],
        links: Links,
        runs: Runs,
        scope: str,
        config: Config,
        options: Options,
    ) -> None:
        self.directory = directory
        self.runs = runs
        self.scope = scope
        self.options = options
        self.progress = Progress(runs, scope)
        self.mappings = {
            "user": ResourceMapping(config.user_mapping, resource_types["User"]),
            "group": ResourceMapping(config.group_mapping, resource_types["Group"]),
        }
        members = ScopeMembers(links.redis, links.prefix, scope)
        if options.dry_run:
            links, members = DryRunLinks(links), DryRunMembers(members)
            self.writes: Writes = DryRunWrites(directory, resource_types, self.progress)
        else:
            self.writes = Writes(directory, resource_types, self.progress)
        self.links = links
        self.tracker = ScopeTracker(
            members, self.mappings["group"].select("members"), self.progress.check_cancel
        )
        self.matcher = Matcher(
            directory,
            links,
            self.mappings,
            config.matching_attribute,
            self.progress,
            self.writes.pretended,
        )
        self.deprovisions = Deprovisions(
            directory,
            runs,
            self.progress,
            self.writes,
            DeletionGuard(options.guard_max, options.guard_share),
            dry_run=options.dry_run,
            confirmed=options.confirmed,
        )
        self._pending_managers: list[tuple[str, str]] = []
        self._doomed_users: Doomed = []

    @property
    def drift(self) -> Drift:
        """The drift found so far."""
        return self.progress.drift

    @property
    def errors(self) -> list[str]:
        """The errors recorded so far (the first ones)."""
        return self.progress.errors

    # --- entry points ---------------------------------------------------------------------
    async def full(self, source: GraphSource) -> dict[str, Any]:
        """Read everything in scope and correct every difference."""
        self.progress.phase("scope")
        assigned_users, assigned_groups = await source.assigned_principals()
        found = await self.tracker.read_all(source, assigned_groups)
        users_in_scope = assigned_users | self.tracker.users(found.objects)
        seen_users = await self._users_phase(source, None, users_in_scope, full=True)
        self.progress.phase("groups", total=len(found.objects))
        seen_groups = set(await self._upsert_held_groups(source, found.objects))
        self.links.save_delta_link(self.scope, "groups", found.delta_link)
        self.progress.phase("sweep")
        doomed = self.deprovisions.unseen("user", seen_users) + self.deprovisions.unseen(
            "group", seen_groups
        )
        return self.deprovisions.settle(doomed)

    async def incremental(self, source: GraphSource) -> dict[str, Any]:
        """Apply what changed since the last run; a full run when there is no delta link."""
        users_link = self.links.delta_link(self.scope, "users")
        groups_link = self.links.delta_link(self.scope, "groups")
        if not users_link or not groups_link or not self.tracker.members.held():
            return await self.full(source)
        try:
            return await self._incremental(source, users_link, groups_link)
        except DeltaExpired:
            log.info("delta link expired for %s: falling back to a full run", self.scope)
            self.links.save_delta_link(self.scope, "users", None)
            self.links.save_delta_link(self.scope, "groups", None)
            return await self.full(source)

    async def one(self, source: GraphSource, kind: str, key: str) -> dict[str, Any]:
        """Reconcile a single user (by id or userPrincipalName) or group (by id) now."""
        assigned_users, assigned_groups = await source.assigned_principals()
        if kind == "user":
            obj = await source.user(key, self.mappings["user"].select(MANAGER))
            graph_id = obj["id"] if obj else key
            if obj is not None and await self.tracker.contains_user(
                source, graph_id, assigned_users, assigned_groups
            ):
                await self._upsert_users(source, [obj])
                self._fix_managers()
                return self.progress.report()
            linked = self.links.bridge_ids("user", [graph_id])
            return self.deprovisions.settle([("user", rid) for rid in linked.values()])
        obj = await source.group(key, self.mappings["group"].select())
        if obj is not None and obj["id"] in assigned_groups:
            members = await self.tracker.list_members(source, obj["id"])
            obj["members@delta"] = [{"id": m} for m in members]
            await self._upsert_groups(source, [obj], full=True)
            return self.progress.report()
        linked = self.links.bridge_ids("group", [obj["id"] if obj else key])
        return self.deprovisions.settle([("group", rid) for rid in linked.values()])

    # --- phases ---------------------------------------------------------------------------
    async def _incremental(
        self, source: GraphSource, users_link: str, groups_link: str
    ) -> dict[str, Any]:
        self.progress.phase("scope")
        assigned_users, assigned_groups = await source.assigned_principals()
        changes = await self.tracker.read_changes(source, groups_link, assigned_groups)
        users_in_scope = assigned_users | self.tracker.users(changes.in_scope)
        await self._users_phase(source, users_link, users_in_scope, full=False)
        self.progress.phase("groups")
        await self._upsert_changed_groups(source, list(changes.changed.values()))
        fresh: dict[str, GraphObject] = {}
        for group_id in sorted(changes.new):
            obj = await source.group(group_id, self.mappings["group"].select())
            if obj is not None:
                fresh[group_id] = obj
        await self._upsert_held_groups(source, fresh)
        self.links.save_delta_link(self.scope, "groups", changes.delta_link)
        gone = self.links.bridge_ids("group", sorted(changes.gone))
        doomed = [("group", rid) for rid in gone.values()]
        return self.deprovisions.settle(sorted(set(self._doomed_users + doomed)))

    async def _users_phase(
        self, source: GraphSource, link: str | None, in_scope: set[str], *, full: bool
    ) -> set[str]:
        """Upsert users in scope from the users delta; returns the bridge ids seen."""
        self.progress.phase("users", total=len(in_scope) if full else None)
        select = self.mappings["user"].select(MANAGER)
        seen: set[str] = set()
        changed: set[str] = set()
        last = link
        async for page in source.users_delta(link, select):
            self.progress.check_cancel()
            present = [u for u in page.items if "@removed" not in u and u["id"] in in_scope]
            seen.update(await self._upsert_users(source, present))
            if not full:
                kept = {u["id"] for u in present}
                gone = [u["id"] for u in page.items if u["id"] not in kept]
                self._doomed_users += [
                    ("user", r) for r in self.links.bridge_ids("user", gone).values()
                ]
                changed.update(u["id"] for u in page.items)
            last = page.delta_link or last
        if not full:
            # assignment changes do not show in the users delta: compare the scope with the links
            linked = self.links.linked_graph_ids("user")
            for graph_id in sorted(in_scope - linked - changed):
                obj = await source.user(graph_id, select)
                if obj is not None:
                    await self._upsert_users(source, [obj])
            unassigned = sorted(linked - in_scope - changed)
            self._doomed_users += [
                ("user", r) for r in self.links.bridge_ids("user", unassigned).values()
            ]
        self._fix_managers()
        self.links.save_delta_link(self.scope, "users", last)
        return seen

    # --- users ----------------------------------------------------------------------------
    async def _upsert_users(self, source: GraphSource, graph_users: list[GraphObject]) -> list[str]:
        """Create or correct each user; returns the bridge ids now standing for them."""
        if not graph_users:
            return []
        prepared = await self.matcher.prepare(source, "user", graph_users)
        managers = self.links.bridge_ids(
            "user", [m for u, _, _ in prepared if (m := manager_of(u))]
        )
        ids: list[str] = []
        new_links: list[tuple[str, str]] = []
        for user, found, record in prepared:
            if found and self._pretended(found, record):
                ids.append(found)
                continue
            manager_graph_id = manager_of(user)
            if manager_graph_id and manager_graph_id not in managers:
                self._pending_managers.append((user["id"], manager_graph_id))
            values = self.mappings["user"].values(user, managers.get(manager_graph_id or ""))
            rid = self._upsert("user", user, record, values)
            if rid:
                ids.append(rid)
                new_links.append((user["id"], rid))
            self.progress.tick()
        self.links.link("user", new_links)
        return ids

    def _fix_managers(self) -> None:
        """Managers created later in the run than their reports: set them now."""
        pending, self._pending_managers = self._pending_managers, []
        path = next(
            (m.text for m in self.mappings["user"].paths.values() if m.prop == MANAGER), None
        )
        if not pending or path is None:
            return
        reports = self.links.bridge_ids("user", [u for u, _ in pending])
        managers = self.links.bridge_ids("user", [m for _, m in pending])
        for user_graph_id, manager_graph_id in pending:
            rid, mid = reports.get(user_graph_id), managers.get(manager_graph_id)
            if rid and mid:
                self.writes.patch(
                    "user", rid, {"op": "replace", "path": path, "value": {"value": mid}}
                )

    # --- groups ---------------------------------------------------------------------------
    async def _upsert_changed_groups(self, source: GraphSource, groups: list[GraphObject]) -> None:
        """Groups of an incremental round: those with a record take the round's changes;
        the others are created, in full, with every held member."""
        found = self.matcher.match("group", groups)
        records = self.matcher.records("group", found)
        existing = [g for g in groups if g["id"] in records]
        await self._upsert_groups(source, existing, full=False)
        rest = {g["id"]: g for g in groups if g["id"] not in records}
        await self._upsert_held_groups(source, rest)

    async def _upsert_held_groups(
        self, source: GraphSource, objects: dict[str, GraphObject]
    ) -> list[str]:
        """Upsert groups with their complete member lists from the held sets."""
        ids: list[str] = []
        chunk: list[GraphObject] = []
        for group_id, obj in objects.items():
            if "@removed" in obj:
                continue
            members = self.tracker.group_members(group_id)
            chunk.append({**obj, "members@delta": [{"id": m} for m in members]})
            if len(chunk) >= GROUP_BATCH:
                ids += await self._upsert_groups(source, chunk, full=True)
                chunk = []
        ids += await self._upsert_groups(source, chunk, full=True)
        return ids

    async def _upsert_groups(
        self, source: GraphSource, graph_groups: list[GraphObject], *, full: bool
    ) -> list[str]:
        """Create or correct each group and its members (all of them when ``full``, else the
        ``members@delta`` changes); returns the bridge ids now standing for them."""
        if not graph_groups:
            return []
        ids: list[str] = []
        new_links: list[tuple[str, str]] = []
        for group, found, record in await self.matcher.prepare(source, "group", graph_groups):
            if found and self._pretended(found, record):
                ids.append(found)
                continue
            values = self.mappings["group"].values(group)
            rid = self._upsert("group", group, record, values)
            if rid:
                ids.append(rid)
                new_links.append((group["id"], rid))
                self._sync_members(rid, record, group.get("members@delta") or [], full)
            self.progress.tick()
        self.links.link("group", new_links)
        return ids

    def _sync_members(
        self, rid: str, record: Record | None, members: list[GraphObject], full: bool
    ) -> None:
        users = [m for m in members if is_user(m)]
        added = [m["id"] for m in users if "@removed" not in m]
        removed = [m["id"] for m in users if "@removed" in m]
        to_bridge = self.links.bridge_ids("user", added + removed)
        current = (
            {m["value"] for m in (record.members or []) if m.get("type") == "User"}
            if record
            else set()
        )
        want = {to_bridge[g] for g in added if g in to_bridge}
        if full:
            gone = current - want
        else:
            gone = {to_bridge[g] for g in removed if g in to_bridge} & current
        new = want - current
        if new or gone:
            self.progress.drift.note("membership", rid)
            self.writes.change_members(rid, new, gone)

    # --- shared ---------------------------------------------------------------------------
    def _upsert(
        self,
        kind: str,
        obj: GraphObject,
        record: Record | None,
        values: dict[str, Any],
    ) -> str | None:
        """Create the resource, or patch the attributes that differ; its bridge id."""
        mapping = self.mappings[kind]
        if record is None:
            self.progress.drift.note("missing", obj["id"])
            unmapped = mapping.unmapped_required(values)
            if unmapped:
                self.progress.error(
                    f"Unmappable: {kind} {obj['id']}: Graph gives no value for "
                    f"{', '.join(unmapped)}; not created"
                )
                return None
            return self.writes.create(kind, obj["id"], mapping.body(values))
        ops = mapping.diff(record.doc, values)
        if ops:
            self.progress.drift.note("attributes", record.id)
            self.writes.patch(kind, record.id, *ops)
        return record.id

    def _pretended(self, found: str, record: Record | None) -> bool:
        """Whether this dry run already pretended to create the object: the real run would
        find the record it just made, with nothing left to change."""
        return record is None and self.writes.pretended(found)

    def apply_deprovisions(self, doomed: Doomed) -> None:
        """Disable users and delete groups that left Entra's scope (confirmed by an admin)."""
        self.deprovisions.apply(doomed)
