"""Reconcile the directory with Entra ID through Microsoft Graph.

Entra is the source of truth. A run reads the objects in scope (the users and groups
assigned to the enterprise application, or configured groups) through delta queries,
compares them with the directory and classifies the drift:

- ``missing``: in scope in Entra, absent from the directory → created;
- ``unassigned``: in the directory, but out of scope or deleted in Entra → users disabled,
  groups deleted (held for an admin when there are too many: the deletion guard);
- ``attributes``: mapped attributes differ → patched;
- ``membership``: group members differ → members added or removed.

A dry run only reports. Every correction is a SCIM write through ResourceService, so it
is stored and announced like a push from Entra and reaches the targets the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.directory import Directory, Record
from bridge.graph.links import Links, ScopeMembers
from bridge.graph.mapping import (
    GROUP_SCHEMA,
    USER_SCHEMA,
    Config,
    as_resource,
    graph_select,
    manager_of,
    mapped_values,
)
from bridge.graph.source import DeltaExpired, GraphSource
from bridge.resync import Runs
from bridge.scim import errors
from bridge.scim.attributes import ResourceType
from bridge.scim.service import ResourceService

log = logging.getLogger(__name__)

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SAMPLES = 20
"""Ids kept per drift class in a run's report."""
MAX_ERRORS = 100


@dataclass
class Drift:
    """Counts (and a few ids) per drift class."""

    missing: int = 0
    unassigned: int = 0
    attributes: int = 0
    membership: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, key: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        bucket = self.samples.setdefault(kind, [])
        if len(bucket) < SAMPLES:
            bucket.append(key)

    def as_dict(self) -> dict:
        return {
            "missing": self.missing,
            "unassigned": self.unassigned,
            "attributes": self.attributes,
            "membership": self.membership,
            "samples": self.samples,
        }


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    confirmed: bool = False
    """An admin confirmed this run's deprovisions: the deletion guard does not stop it."""
    guard_max: int = 500
    guard_share: float = 0.2
    """A run deprovisioning more than guard_max objects, or more than this share of the
    directory, stops and waits for an admin's confirmation."""


class Cancelled(Exception):
    pass


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
        self.users = ResourceService(directory, resource_types["User"])
        self.groups = ResourceService(directory, resource_types["Group"])
        self.links = links
        self.runs = runs
        self.scope = scope
        self.config = config
        self.options = options
        self.drift = Drift()
        self.errors: list[str] = []
        self.done = 0
        self._pending_managers: list[tuple[str, str]] = []
        self._doomed_users: list[tuple[str, str]] = []
        self.members = ScopeMembers(links.redis, links.prefix, scope)

    # --- entry points ---------------------------------------------------------------------
    async def full(self, source: GraphSource) -> dict:
        """Read everything in scope and correct every difference."""
        self._phase("scope")
        assigned_users, assigned_groups = await source.assigned_principals()
        self.members.reset()
        group_objects: dict[str, dict] = {}
        last_groups = None
        async for page in source.groups_delta(None, self._group_select()):
            self._check_cancel()
            self._absorb_groups(page.items, assigned_groups, group_objects, full=True)
            last_groups = page.delta_link or last_groups
        users_in_scope = set(assigned_users) | self.members.users(group_objects)
        seen_users = await self._users_phase(source, None, users_in_scope, full=True)
        self._phase("groups", total=len(group_objects))
        seen_groups = set(self._upsert_held_groups(group_objects))
        self.links.save_delta_link(self.scope, "groups", last_groups)
        self._phase("sweep")
        doomed = self._unseen("user", seen_users) + self._unseen("group", seen_groups)
        return self._deprovision(doomed)

    async def incremental(self, source: GraphSource) -> dict:
        """Apply what changed since the last run; a full run when there is no delta link."""
        users_link = self.links.delta_link(self.scope, "users")
        groups_link = self.links.delta_link(self.scope, "groups")
        if not users_link or not groups_link or not self.members.held():
            return await self.full(source)
        try:
            return await self._incremental(source, users_link, groups_link)
        except DeltaExpired:
            log.info("delta link expired for %s: falling back to a full run", self.scope)
            self.links.save_delta_link(self.scope, "users", None)
            self.links.save_delta_link(self.scope, "groups", None)
            return await self.full(source)

    async def one(self, source: GraphSource, kind: str, key: str) -> dict:
        """Reconcile a single user (by id or userPrincipalName) or group (by id) now."""
        assigned_users, assigned_groups = await source.assigned_principals()
        if kind == "user":
            obj = await source.user(key, graph_select(self.config.user_mapping, "manager"))
            graph_id = obj["id"] if obj else key
            if obj is not None and await self._user_in_scope(
                source, graph_id, assigned_users, assigned_groups
            ):
                self._upsert_users([obj])
                self._fix_managers()
                return self._report()
            linked = self.links.bridge_ids("user", [graph_id])
            return self._deprovision([("user", rid) for rid in linked.values()])
        obj = await source.group(key, graph_select(self.config.group_mapping))
        if obj is not None and obj["id"] in assigned_groups:
            members = await self._list_members(source, obj["id"])
            obj["members@delta"] = [{"id": m} for m in members]
            self._upsert_groups([obj], full=True)
            return self._report()
        linked = self.links.bridge_ids("group", [obj["id"] if obj else key])
        return self._deprovision([("group", rid) for rid in linked.values()])

    # --- phases ---------------------------------------------------------------------------
    async def _incremental(self, source: GraphSource, users_link: str, groups_link: str) -> dict:
        self._phase("scope")
        assigned_users, assigned_groups = await source.assigned_principals()
        held = self.members.held()
        changed: dict[str, dict] = {}
        last_groups = groups_link
        async for page in source.groups_delta(groups_link, self._group_select()):
            self._check_cancel()
            self._absorb_groups(page.items, assigned_groups & held, changed, full=False)
            last_groups = page.delta_link or last_groups
        removed = {gid for gid, obj in changed.items() if "@removed" in obj}
        new_groups = set(assigned_groups) - held - removed
        for group_id in sorted(new_groups):
            self.members.change({group_id: (await self._list_members(source, group_id), [])})
        gone_groups = (held - set(assigned_groups)) | (removed & held)
        self.members.drop(gone_groups)
        in_scope_groups = set(assigned_groups) - removed
        users_in_scope = set(assigned_users) | self.members.users(in_scope_groups)
        await self._users_phase(source, users_link, users_in_scope, full=False)
        self._phase("groups")
        self._upsert_groups(
            [o for g, o in changed.items() if g not in new_groups and g not in removed], full=False
        )
        fresh = {}
        for group_id in sorted(new_groups):
            obj = await source.group(group_id, graph_select(self.config.group_mapping))
            if obj is not None:
                fresh[group_id] = obj
        self._upsert_held_groups(fresh)
        self.links.save_delta_link(self.scope, "groups", last_groups)
        doomed = [
            ("group", rid) for rid in self.links.bridge_ids("group", sorted(gone_groups)).values()
        ]
        return self._deprovision(sorted(set(self._doomed_users + doomed)))

    async def _users_phase(
        self, source: GraphSource, link: str | None, in_scope: set[str], *, full: bool
    ) -> set[str]:
        """Upsert users in scope from the users delta; returns the bridge ids seen."""
        self._phase("users", total=len(in_scope) if full else None)
        select = graph_select(self.config.user_mapping, "manager")
        seen: set[str] = set()
        changed: set[str] = set()
        last = link
        async for page in source.users_delta(link, select):
            self._check_cancel()
            present = [u for u in page.items if "@removed" not in u and u["id"] in in_scope]
            seen.update(self._upsert_users(present))
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
            linked = {
                g.decode() for g in self.links.redis.hkeys(f"{self.links.prefix}:graph:link:user")
            }
            for graph_id in sorted(in_scope - linked - changed):
                obj = await source.user(graph_id, select)
                if obj is not None:
                    self._upsert_users([obj])
            unassigned = sorted(linked - in_scope - changed)
            self._doomed_users += [
                ("user", r) for r in self.links.bridge_ids("user", unassigned).values()
            ]
        self._fix_managers()
        self.links.save_delta_link(self.scope, "users", last)
        return seen

    # --- scope ----------------------------------------------------------------------------
    def _group_select(self) -> list[str]:
        return graph_select(self.config.group_mapping, "members")

    def _absorb_groups(
        self, items: list[dict], wanted, objects: dict[str, dict], *, full: bool
    ) -> None:
        """Keep the wanted groups' properties (merged across pages: Graph may split a large
        group's members over several) and apply their member changes to the held sets."""
        changes: dict[str, tuple[list[str], list[str]]] = {}
        for item in items:
            group_id = item["id"]
            if group_id not in wanted and not (not full and "@removed" in item):
                continue
            obj = objects.setdefault(group_id, {})
            members = obj.get("members@delta", [])
            obj.update(item)
            obj["members@delta"] = members + list(item.get("members@delta") or [])
            if "@removed" in item:
                continue
            added, removed = changes.setdefault(group_id, ([], []))
            for member in item.get("members@delta") or []:
                if "user" not in member.get("@odata.type", "#microsoft.graph.user").lower():
                    continue
                (removed if "@removed" in member else added).append(member["id"])
        self.members.change(changes)

    def _upsert_held_groups(self, objects: dict[str, dict]) -> list[str]:
        """Upsert groups with their complete member lists from the held sets."""
        ids: list[str] = []
        chunk: list[dict] = []
        for group_id, obj in objects.items():
            if "@removed" in obj:
                continue
            full_obj = dict(obj)
            full_obj["members@delta"] = [{"id": m} for m in self.members.members(group_id)]
            chunk.append(full_obj)
            if len(chunk) >= 100:
                ids += self._upsert_groups(chunk, full=True)
                chunk = []
        ids += self._upsert_groups(chunk, full=True)
        return ids

    async def _list_members(self, source: GraphSource, group_id: str) -> list[str]:
        members: list[str] = []
        async for batch in source.group_member_ids(group_id):
            members.extend(batch)
        return members

    async def _user_in_scope(self, source: GraphSource, graph_id: str, users, groups) -> bool:
        if graph_id in users:
            return True
        held = self.members.held()
        for group_id in groups:
            members = (
                self.members.members(group_id)
                if group_id in held
                else await self._list_members(source, group_id)
            )
            if graph_id in members:
                return True
        return False

    # --- users ----------------------------------------------------------------------------
    def _upsert_users(self, graph_users: list[dict]) -> list[str]:
        """Create or correct each user; returns the bridge ids now standing for them."""
        if not graph_users:
            return []
        found = self._match("user", graph_users)
        managers = self.links.bridge_ids("user", [m for u in graph_users if (m := manager_of(u))])
        records = {r.id: r for r in self.directory.get_many("user", list(set(found.values())))}
        ids: list[str] = []
        new_links: list[tuple[str, str]] = []
        for user in graph_users:
            manager_graph_id = manager_of(user)
            values = mapped_values(
                user, self.config.user_mapping, managers.get(manager_graph_id or "")
            )
            if manager_graph_id and manager_graph_id not in managers:
                self._pending_managers.append((user["id"], manager_graph_id))
            record = records.get(found.get(user["id"], ""))
            rid = self._upsert("user", user["id"], values, record, USER_SCHEMA)
            if rid:
                ids.append(rid)
                new_links.append((user["id"], rid))
            self._tick()
        if not self.options.dry_run:
            self.links.link("user", new_links)
        return ids

    def _fix_managers(self) -> None:
        """Managers created later in the run than their reports: set them now."""
        pending, self._pending_managers = self._pending_managers, []
        if not pending or self.options.dry_run:
            return
        reports = self.links.bridge_ids("user", [u for u, _ in pending])
        managers = self.links.bridge_ids("user", [m for _, m in pending])
        path = next((p for p, prop in self.config.user_mapping.items() if prop == "manager"), None)
        for user_graph_id, manager_graph_id in pending:
            rid, mid = reports.get(user_graph_id), managers.get(manager_graph_id)
            if path and rid and mid:
                self._write(
                    lambda r=rid, m=mid: self.users.patch(
                        r, _patch({"op": "replace", "path": path, "value": {"value": m}}), None
                    )
                )

    # --- groups ---------------------------------------------------------------------------
    def _upsert_groups(self, graph_groups: list[dict], *, full: bool) -> list[str]:
        if not graph_groups:
            return []
        found = self._match("group", graph_groups)
        records = {
            r.id: r
            for r in self.directory.get_many("group", list(set(found.values())), members=True)
        }
        ids: list[str] = []
        for group in graph_groups:
            values = mapped_values(group, self.config.group_mapping)
            record = records.get(found.get(group["id"], ""))
            rid = self._upsert("group", group["id"], values, record, GROUP_SCHEMA)
            if rid:
                ids.append(rid)
                if not self.options.dry_run:
                    self.links.link("group", [(group["id"], rid)])
                self._sync_members(rid, record, group.get("members@delta") or [], full)
            self._tick()
        return ids

    def _sync_members(
        self, rid: str, record: Record | None, members: list[dict], full: bool
    ) -> None:
        users = [
            m for m in members if "user" in m.get("@odata.type", "#microsoft.graph.user").lower()
        ]
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
        if not new and not gone:
            return
        self.drift.note("membership", rid)
        if self.options.dry_run:
            return
        ops = []
        if new:
            ops.append(
                {"op": "add", "path": "members", "value": [{"value": m} for m in sorted(new)]}
            )
        if gone:
            ops.append(
                {"op": "remove", "path": "members", "value": [{"value": m} for m in sorted(gone)]}
            )
        self._write(lambda: self.groups.patch(rid, _patch(*ops), None))

    # --- shared ---------------------------------------------------------------------------
    def _match(self, kind: str, objects: list[dict]) -> dict[str, str]:
        """Graph id -> bridge id: by link first, then by the matching attribute."""
        found = self.links.bridge_ids(kind, [o["id"] for o in objects])
        rest = [o for o in objects if o["id"] not in found]
        if not rest:
            return found
        keyed = [(obj["id"], *self._match_key(kind, obj)) for obj in rest]
        keyed = [(graph_id, attr, value) for graph_id, attr, value in keyed if value]
        pipe = self.directory.redis.pipeline(transaction=False)
        for _, attr, value in keyed:
            pipe.hget(self.directory.index_key(kind, attr), value)
        for (graph_id, _, _), rid in zip(keyed, pipe.execute(), strict=True):
            if rid:
                found[graph_id] = rid.decode()
        return found

    def _match_key(self, kind: str, obj: dict) -> tuple[str, str | None]:
        if kind == "group":
            name = obj.get("displayName")
            return "displayName", name.casefold() if isinstance(name, str) else None
        attr = self.config.matching_attribute
        prop = self.config.user_mapping.get(attr)
        value = obj.get(prop) if prop else None
        if not isinstance(value, str):
            return attr, None
        return attr, value.casefold() if attr == "userName" else value

    def _upsert(
        self, kind: str, graph_id: str, values: dict[str, Any], record: Record | None, schema: str
    ) -> str | None:
        service = self.users if kind == "user" else self.groups
        if record is None:
            self.drift.note("missing", graph_id)
            if self.options.dry_run:
                return None
            body = as_resource(values, schema)
            created = self._write(lambda: service.create(body))
            return created.record.id if created else None
        ops = _diff(record.doc, values)
        if ops:
            self.drift.note("attributes", record.id)
            if not self.options.dry_run:
                self._write(lambda: service.patch(record.id, _patch(*ops), None))
        return record.id

    def _unseen(self, kind: str, seen: set[str]) -> list[tuple[str, str]]:
        """Directory resources a full run did not find in scope."""
        out = []
        for record in self.directory.scan(kind):
            if record.id in seen:
                continue
            if kind == "user" and record.doc.get("active") is False:
                continue
            out.append((kind, record.id))
        return out

    def _deprovision(self, doomed: list[tuple[str, str]]) -> dict:
        for _, rid in doomed:
            self.drift.note("unassigned", rid)
        if self.options.dry_run or not doomed:
            return self._report()
        total = self.directory.count("user") + self.directory.count("group")
        over = len(doomed) > self.options.guard_max or (
            total and len(doomed) > self.options.guard_share * total
        )
        if over and not self.options.confirmed:
            pending = [{"kind": k, "id": r} for k, r in doomed]
            report = self._report(status="awaiting_confirmation")
            self.runs.await_confirmation(self.scope, pending, **report)
            return report
        self.apply_deprovisions(doomed)
        return self._report()

    def apply_deprovisions(self, doomed: list[tuple[str, str]]) -> None:
        """Disable users and delete groups that left Entra's scope."""
        self._phase("deprovision", total=len(doomed))
        for kind, rid in doomed:
            if kind == "user":
                body = _patch({"op": "replace", "path": "active", "value": False})
                self._write(lambda r=rid, b=body: self.users.patch(r, b, None))
            else:
                self._write(lambda r=rid: self.groups.delete(r, None))
            self._tick()

    def _write(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except errors.NotFound:
            return None
        except errors.ScimError as exc:
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(f"{type(exc).__name__}: {exc.detail}")
            return None

    def _phase(self, phase: str, total: int | None = None) -> None:
        fields: dict[str, Any] = {
            "phase": phase,
            "drift": self.drift.as_dict(),
            "errors": self.errors,
        }
        if total is not None:
            fields.update(total=total, done=0)
            self.done = 0
        self.runs.update(self.scope, **fields)

    def _tick(self) -> None:
        self.done += 1
        if self.done % 500 == 0:
            self.runs.update(
                self.scope, done=self.done, drift=self.drift.as_dict(), errors=self.errors
            )

    def _check_cancel(self) -> None:
        if self.runs.cancelled(self.scope):
            raise Cancelled()

    def _report(self, status: str = "completed") -> dict:
        return {
            "status": status,
            "drift": self.drift.as_dict(),
            "errors": self.errors,
            "done": self.done,
        }


def _patch(*ops: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def _diff(doc: dict, values: dict[str, Any]) -> list[dict]:
    """PATCH operations that bring ``doc`` to the mapped ``values``."""
    ops = []
    for path, wanted in values.items():
        current = extract(doc, path)
        if _same(current, wanted):
            continue
        if wanted is None:
            ops.append({"op": "remove", "path": path})
        else:
            ops.append({"op": "replace", "path": path, "value": wanted})
    return ops


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict) and isinstance(current, dict):
        return current.get("value") == wanted.get("value")
    if current is None or wanted is None:
        return current is None and wanted is None
    return current == wanted


def extract(doc: dict, path: str) -> Any:
    """The value at one mapping path of a stored document (canonical keys)."""
    if path.startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        return (doc.get(urn) or {}).get(attr)
    if "[" in path:
        attr, _, rest = path.partition("[")
        condition, _, sub = rest.partition("].")
        key, _, literal = condition.partition(" eq ")
        literal = literal.strip().strip('"').casefold()
        for element in doc.get(attr) or []:
            if (
                isinstance(element, dict)
                and str(element.get(key.strip(), "")).casefold() == literal
            ):
                return element.get(sub)
        return None
    if "." in path:
        attr, _, sub = path.partition(".")
        return (doc.get(attr) or {}).get(sub)
    return doc.get(path)
