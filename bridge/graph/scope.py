"""Who belongs to the bridge: the app's assigned users, and the direct members of its
assigned groups, tracked from the groups delta's ``members@delta``.

:class:`ScopeMembers` keeps each assigned group's members between runs, so an incremental
run knows who is in scope without listing every group again; :class:`DryRunMembers` is
the same over an in-memory overlay, for runs that must not write; :class:`ScopeTracker`
reads the groups delta into them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis

from bridge.graph.links import text
from bridge.graph.translate import GraphObject

if TYPE_CHECKING:
    from bridge.graph.source import GraphSource

GroupMembershipDeltas = dict[str, tuple[list[str], list[str]]]
"""``{group id: (added user ids, removed user ids)}``."""


def is_user(member: GraphObject) -> bool:
    """Whether a ``members@delta`` entry is a user (the type is left out for users)."""
    return "user" in str(member.get("@odata.type", "#microsoft.graph.user")).lower()


class ScopeMembers:
    """The members of each assigned group, as of the last run.

    Keys::

        {p}:graph:scope:{scope}:groups        set of group ids whose members are held
        {p}:graph:scope:{scope}:group:{id}    set of the group's user ids (Graph ids)
    """

    def __init__(self, client: redis.Redis, prefix: str, scope: str) -> None:
        self.redis = client
        self.prefix = prefix
        self.scope = scope
        self.base = f"{prefix}:graph:scope:{scope}"

    def _group(self, group_id: str) -> str:
        return f"{self.base}:group:{group_id}"

    def held(self) -> set[str]:
        """The groups whose members are held."""
        return {text(g) for g in self.redis.smembers(f"{self.base}:groups")}

    def reset(self) -> None:
        """Forget every group: a full run reads them all again."""
        held = self.held()
        pipe = self.redis.pipeline(transaction=False)
        for group_id in held:
            pipe.delete(self._group(group_id))
        pipe.delete(f"{self.base}:groups")
        pipe.execute()

    def change(self, changes: GroupMembershipDeltas) -> None:
        """Apply ``{group id: (added user ids, removed user ids)}`` in one round trip; each
        group becomes held."""
        if not changes:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(f"{self.base}:groups", *changes)
        for group_id, (added, removed) in changes.items():
            if added:
                pipe.sadd(self._group(group_id), *added)
            if removed:
                pipe.srem(self._group(group_id), *removed)
        pipe.execute()

    def drop(self, group_ids: Iterable[str]) -> None:
        """Forget groups that left the scope."""
        group_ids = list(group_ids)
        if not group_ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(f"{self.base}:groups", *group_ids)
        pipe.delete(*(self._group(g) for g in group_ids))
        pipe.execute()

    def members(self, group_id: str) -> list[str]:
        """The group's user ids, sorted."""
        return sorted(text(m) for m in self.redis.smembers(self._group(group_id)))

    def users(self, group_ids: Iterable[str]) -> set[str]:
        """The users of any of these groups."""
        keys = [self._group(g) for g in group_ids]
        if not keys:
            return set()
        return {text(m) for m in self.redis.sunion(keys)}


class DryRunMembers(ScopeMembers):
    """The held members as a real run would leave them, without writing: changes are kept
    in memory (a group's whole set once it is touched) and read back over the stored ones."""

    def __init__(self, stored: ScopeMembers) -> None:
        super().__init__(stored.redis, stored.prefix, stored.scope)
        self._reset = False
        self._held: set[str] | None = None
        self._groups: dict[str, set[str]] = {}

    def held(self) -> set[str]:
        """The groups whose members are held."""
        if self._held is not None:
            return set(self._held)
        return set() if self._reset else super().held()

    def reset(self) -> None:
        """Forget every group, in memory."""
        self._reset, self._held, self._groups = True, set(), {}

    def change(self, changes: GroupMembershipDeltas) -> None:
        """Apply member changes in memory."""
        held = self._own_held()
        for group_id, (added, removed) in changes.items():
            held.add(group_id)
            members = self._own_group(group_id)
            members.update(added)
            members.difference_update(removed)

    def drop(self, group_ids: Iterable[str]) -> None:
        """Forget groups, in memory."""
        held = self._own_held()
        for group_id in group_ids:
            held.discard(group_id)
            self._groups[group_id] = set()

    def members(self, group_id: str) -> list[str]:
        """The group's user ids, sorted."""
        if group_id in self._groups:
            return sorted(self._groups[group_id])
        return [] if self._reset else super().members(group_id)

    def users(self, group_ids: Iterable[str]) -> set[str]:
        """The users of any of these groups."""
        group_ids = list(group_ids)
        mine = [self._groups[g] for g in group_ids if g in self._groups]
        stored = [] if self._reset else [g for g in group_ids if g not in self._groups]
        return set().union(*mine) | super().users(stored)

    def _own_held(self) -> set[str]:
        if self._held is None:
            self._held = self.held()
        return self._held

    def _own_group(self, group_id: str) -> set[str]:
        if group_id not in self._groups:
            self._groups[group_id] = set(self.members(group_id))
        return self._groups[group_id]


@dataclass
class GroupRound:
    """What a groups delta round brought for the groups in scope."""

    objects: dict[str, GraphObject] = field(default_factory=dict)
    """Each group's properties, merged across pages (Graph may split a large group's
    members over several), with every ``members@delta`` entry."""
    delta_link: str | None = None


@dataclass
class ScopeChanges:
    """How the scope moved since the last run."""

    changed: dict[str, GraphObject]
    """Held groups still in scope whose properties or members changed."""
    new: set[str]
    """Groups assigned since the last run: their members were listed, their objects not."""
    gone: set[str]
    """Held groups that were unassigned or deleted."""
    in_scope: set[str]
    """Every group in scope now."""
    delta_link: str | None


class ScopeTracker:
    """Reads the groups delta into :class:`ScopeMembers` and answers who is in scope.

    ``check`` is called between pages (it raises to cancel the run)."""

    def __init__(self, members: ScopeMembers, select: list[str], check: Callable[[], None]) -> None:
        self.members = members
        self.select = select
        self.check = check

    async def read_all(self, source: GraphSource, assigned_groups: set[str]) -> GroupRound:
        """A full groups round: the assigned groups and all their members, held anew."""
        self.members.reset()
        found = GroupRound()
        async for page in source.groups_delta(None, self.select):
            self.check()
            self._absorb(page.items, assigned_groups, found.objects, full=True)
            found.delta_link = page.delta_link or found.delta_link
        return found

    async def read_changes(
        self, source: GraphSource, link: str, assigned_groups: set[str]
    ) -> ScopeChanges:
        """The groups round since ``link``, applied to the held members; the members of
        newly assigned groups are listed, those of groups that left the scope dropped."""
        held = self.members.held()
        found = GroupRound(delta_link=link)
        async for page in source.groups_delta(link, self.select):
            self.check()
            self._absorb(page.items, assigned_groups & held, found.objects, full=False)
            found.delta_link = page.delta_link or found.delta_link
        removed = {gid for gid, obj in found.objects.items() if "@removed" in obj}
        new = assigned_groups - held - removed
        for group_id in sorted(new):
            self.members.change({group_id: (await self.list_members(source, group_id), [])})
        gone = (held - assigned_groups) | (removed & held)
        self.members.drop(gone)
        changed = {g: o for g, o in found.objects.items() if g not in new and g not in removed}
        return ScopeChanges(changed, new, gone, assigned_groups - removed, found.delta_link)

    def users(self, group_ids: Iterable[str]) -> set[str]:
        """The users held as members of any of these groups."""
        return self.members.users(group_ids)

    def group_members(self, group_id: str) -> list[str]:
        """The held members of one group."""
        return self.members.members(group_id)

    async def list_members(self, source: GraphSource, group_id: str) -> list[str]:
        """The group's user members, listed from Graph."""
        members: list[str] = []
        async for batch in source.group_member_ids(group_id):
            members.extend(batch)
        return members

    async def contains_user(
        self,
        source: GraphSource,
        graph_id: str,
        assigned_users: set[str],
        assigned_groups: set[str],
    ) -> bool:
        """Whether one user is in scope: assigned, or a member of an assigned group (held
        members where they are held, listed from Graph where not)."""
        if graph_id in assigned_users:
            return True
        held = self.members.held()
        for group_id in sorted(assigned_groups):
            if group_id in held:
                members = self.members.members(group_id)
            else:
                members = await self.list_members(source, group_id)
            if graph_id in members:
                return True
        return False

    def _absorb(
        self,
        items: list[GraphObject],
        wanted: set[str],
        objects: dict[str, GraphObject],
        *,
        full: bool,
    ) -> None:
        """Keep the wanted groups' properties and apply their member changes to the held
        sets; an incremental round also keeps the removal of any group."""
        changes: GroupMembershipDeltas = {}
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
                if is_user(member):
                    (removed if "@removed" in member else added).append(member["id"])
        self.members.change(changes)
