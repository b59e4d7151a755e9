"""In-memory Entra tenant behind the fake Microsoft Graph: users, groups with members, app
role assignments, and the change tracking that Graph's delta query exposes.

Records are never mutated in place: a change stores a new dict, so a delta round that
began earlier keeps seeing the objects as they were (each round is frozen when it
begins). A global sequence number orders changes; an append-only change log lets an
incremental round find what changed since its token in time proportional to the changes.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
DEFAULT_APP_ROLE_ID = "00000000-0000-0000-0000-000000000000"
"""The app role Entra uses for "Default Access" assignments."""

USER_PROPERTIES = (
    "userPrincipalName",
    "mailNickname",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "accountEnabled",
    "department",
    "employeeId",
    "jobTitle",
)
GROUP_PROPERTIES = (
    "displayName",
    "mail",
    "mailNickname",
    "description",
    "mailEnabled",
    "securityEnabled",
)


class SyncStateNotFound(Exception):
    """The delta token is unknown or was expired (Graph answers 410 Gone)."""


@dataclass
class Collection:
    """Users or groups: current records, change sequence numbers, tombstones, change log."""

    objects: dict[str, dict] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # id -> seq of last property change
    prop_seqs: dict[str, dict[str, int]] = field(default_factory=dict)  # id -> {name: seq}
    removed: dict[str, tuple[int, str, dict]] = field(default_factory=dict)  # seq, reason, record
    log_seqs: list[int] = field(default_factory=list)
    log_ids: list[str] = field(default_factory=list)

    def touched_since(self, seq: int) -> list[str]:
        """Ids changed after ``seq``, each once, in order of their last change."""
        start = bisect.bisect_right(self.log_seqs, seq)
        return list(dict.fromkeys(reversed(self.log_ids[start:])))[::-1]


@dataclass
class DeltaRound:
    """One enumeration, frozen when it began: ``items`` are rendered by ``render``."""

    kind: str
    seq: int
    select: tuple[str, ...] | None
    items: list
    render: Callable[[object], dict]


class Tenant:
    """The directory the fake Graph serves; tests mutate it through these methods."""

    def __init__(self, service_principal_id: str | None = None) -> None:
        self.lock = threading.RLock()
        self.seq = 0
        self.users = Collection()
        self.groups = Collection()
        self.upn_index: dict[str, str] = {}
        self.member_log: dict[str, list[tuple[int, str, str]]] = {}  # gid -> (seq, id, type)
        self.service_principal_id = service_principal_id or str(uuid.uuid4())
        self.assignments: list[dict] = []
        self.rounds: dict[str, DeltaRound] = {}
        self.delta_tokens: dict[str, tuple[str, int, tuple[str, ...] | None]] = {}
        self.only_changed_properties = False
        """Incremental rounds carry only the properties that changed (as Graph may do:
        "at least the updated properties"); by default they carry every selected one."""
        self._counter = itertools.count(1)

    # -- users ----------------------------------------------------------------------------
    def add_user(self, **attrs) -> dict:
        """Create a user with unique defaults; keyword arguments override them."""
        n = next(self._counter)
        nick = attrs.pop("mailNickname", f"user{n}")
        record = {
            "id": attrs.pop("id", str(uuid.uuid4())),
            "userPrincipalName": f"{nick}@contoso.test",
            "mailNickname": nick,
            "displayName": f"User {n}",
            "givenName": "User",
            "surname": str(n),
            "mail": f"{nick}@contoso.test",
            "accountEnabled": True,
            "department": None,
            "employeeId": None,
            "jobTitle": None,
            "_manager": None,
        }
        record.update(_internal(attrs))
        with self.lock:
            self._put(self.users, record)
            self.upn_index[record["userPrincipalName"].lower()] = record["id"]
        return record

    def update_user(self, user_id: str, **attrs) -> dict:
        """Change a user's properties; ``manager="<id>"`` or ``manager=None`` sets the manager."""
        with self.lock:
            old = self.users.objects[user_id]
            record = {**old, **_internal(attrs)}
            record.pop("_old_manager", None)
            if record["_manager"] != old["_manager"]:
                record["_old_manager"] = old["_manager"]
            self.upn_index.pop(old["userPrincipalName"].lower(), None)
            self.upn_index[record["userPrincipalName"].lower()] = user_id
            self._put(self.users, record, old)
        return record

    def delete_user(self, user_id: str, permanent: bool = False) -> None:
        """Delete a user: soft (``@removed.reason == "changed"``) unless ``permanent``."""
        with self.lock:
            record = self.users.objects[user_id]
            self.upn_index.pop(record["userPrincipalName"].lower(), None)
            self._remove(self.users, user_id, permanent)
            for gid, group in list(self.groups.objects.items()):
                if any(mid == user_id for mid, _ in group["_members"]):
                    self._change_members(gid, remove=[user_id])

    def restore_user(self, user_id: str) -> dict:
        """Bring back a soft-deleted user, as restoring from deleted items does."""
        with self.lock:
            _, reason, record = self.users.removed.pop(user_id)
            assert reason == "changed", "only soft-deleted users can be restored"
            self.upn_index[record["userPrincipalName"].lower()] = user_id
            self._put(self.users, record)
        return record

    # -- groups ---------------------------------------------------------------------------
    def add_group(self, members: Iterable[str] = (), **attrs) -> dict:
        """Create a group (security, not mail-enabled) with ``members`` (user or group ids)."""
        n = next(self._counter)
        record = {
            "id": attrs.pop("id", str(uuid.uuid4())),
            "displayName": f"Group {n}",
            "mail": None,
            "mailNickname": f"group{n}",
            "description": None,
            "mailEnabled": False,
            "securityEnabled": True,
            "_members": (),
        }
        record.update(attrs)
        with self.lock:
            record["_members"] = tuple((mid, self._type_of(mid)) for mid in dict.fromkeys(members))
            self._put(self.groups, record)
        return record

    def update_group(self, group_id: str, **attrs) -> dict:
        """Change a group's properties."""
        with self.lock:
            old = self.groups.objects[group_id]
            self._put(self.groups, {**old, **attrs}, old)
            record = self.groups.objects[group_id]
        return record

    def add_members(self, group_id: str, *member_ids: str) -> None:
        """Add users or groups to a group (a membership change: no property change)."""
        with self.lock:
            self._change_members(group_id, add=member_ids)

    def remove_members(self, group_id: str, *member_ids: str) -> None:
        """Remove members from a group."""
        with self.lock:
            self._change_members(group_id, remove=member_ids)

    def delete_group(self, group_id: str, permanent: bool = False) -> None:
        """Delete a group: soft unless ``permanent``."""
        with self.lock:
            self._remove(self.groups, group_id, permanent)

    def members(self, group_id: str) -> tuple[tuple[str, str], ...]:
        """(id, @odata.type) of the group's direct members."""
        return self.groups.objects[group_id]["_members"]

    # -- app role assignments -------------------------------------------------------------
    def assign(self, principal_id: str, app_role_id: str = DEFAULT_APP_ROLE_ID) -> dict:
        """Assign a user or group to the enterprise app (``service_principal_id``)."""
        with self.lock:
            is_user = principal_id in self.users.objects
            record = (self.users if is_user else self.groups).objects[principal_id]
            assignment = {
                "id": str(uuid.uuid4()),
                "appRoleId": app_role_id,
                "principalId": principal_id,
                "principalType": "User" if is_user else "Group",
                "principalDisplayName": record["displayName"],
                "resourceId": self.service_principal_id,
            }
            self.assignments = [*self.assignments, assignment]
        return assignment

    def unassign(self, principal_id: str) -> None:
        """Remove every assignment of ``principal_id``."""
        with self.lock:
            self.assignments = [a for a in self.assignments if a["principalId"] != principal_id]

    # -- delta ----------------------------------------------------------------------------
    def start_round(self, kind: str, select: tuple[str, ...] | None, token: str | None) -> str:
        """Freeze a new enumeration of ``kind``: everything, or the changes since ``token``."""
        with self.lock:
            if token is not None:
                if token not in self.delta_tokens or self.delta_tokens[token][0] != kind:
                    raise SyncStateNotFound(token)
                _, since, select = self.delta_tokens[token]
                items: list = self._changes(kind, since, select)
                render: Callable = _identity
            else:
                items = list(self._collection(kind).objects.values())
                render = self._renderer(kind, select)
            round_id = uuid.uuid4().hex
            self.rounds[round_id] = DeltaRound(kind, self.seq, select, items, render)
            return round_id

    def round_page(self, round_id: str, offset: int, size: int) -> tuple[list[dict], str | None]:
        """Items ``offset:offset+size`` of a round, and a delta token once the round is done."""
        rnd = self.rounds[round_id]
        page = [rnd.render(item) for item in rnd.items[offset : offset + size]]
        if offset + size < len(rnd.items):
            return page, None
        with self.lock:
            token = uuid.uuid4().hex
            self.delta_tokens[token] = (rnd.kind, rnd.seq, rnd.select)
        return page, token

    def expire_delta_tokens(self) -> None:
        """Forget every delta token, as Graph does after its retention period."""
        with self.lock:
            self.delta_tokens.clear()

    def render_user(self, record: dict, select: Iterable[str] | None, expand=()) -> dict:
        """A user as Graph JSON; ``$expand=manager`` gives ``manager: {"@odata.type", "id"}``."""
        out = _project(record, USER_PROPERTIES, select)
        if "manager" in expand and record["_manager"]:
            out["manager"] = {"@odata.type": USER_TYPE, "id": record["_manager"]}
        return out

    def render_group(self, record: dict, select: Iterable[str] | None) -> dict:
        """A group as Graph JSON (members are not a property: use the members route)."""
        return _project(record, GROUP_PROPERTIES, select)

    # -- internals ------------------------------------------------------------------------
    def _renderer(self, kind: str, select) -> Callable[[dict], dict]:
        if kind == "users":

            def render(record: dict) -> dict:
                out = _project(record, USER_PROPERTIES, select)
                if select and "manager" in select and record["_manager"]:
                    out["manager@delta"] = [{"@odata.type": USER_TYPE, "id": record["_manager"]}]
                return out

            return render

        def render_group(record: dict) -> dict:
            out = _project(record, GROUP_PROPERTIES, select)
            if select is None or "members" in select:
                out["members@delta"] = [{"@odata.type": t, "id": m} for m, t in record["_members"]]
            return out

        return render_group

    def _changes(self, kind: str, since: int, select) -> list[dict]:
        collection = self._collection(kind)
        full = self._renderer(kind, select)
        items = []
        for oid in collection.touched_since(since):
            if oid in collection.removed:
                reason = collection.removed[oid][1]
                items.append({"id": oid, "@removed": {"reason": reason}})
                continue
            record = collection.objects[oid]
            props_changed = collection.changed.get(oid, 0) > since
            item = full(record) if props_changed else {"id": oid}
            if kind == "users" and props_changed and "_old_manager" in record:
                if select and "manager" in select and not record["_manager"]:
                    gone = {"id": record["_old_manager"], "@removed": {"reason": "deleted"}}
                    item["manager@delta"] = [{"@odata.type": USER_TYPE, **gone}]
            if self.only_changed_properties and props_changed:
                item = self._changed_only(item, collection.prop_seqs[oid], since)
            if kind == "groups" and (select is None or "members" in select):
                item["members@delta"] = self._member_changes(record, since)
            items.append(item)
        return items

    @staticmethod
    def _changed_only(item: dict, seqs: dict[str, int], since: int) -> dict:
        """Drop the properties that did not change since ``since``."""
        seqs = {("manager@delta" if k == "_manager" else k): v for k, v in seqs.items()}
        return {k: v for k, v in item.items() if k == "id" or seqs.get(k, 0) > since}

    def _member_changes(self, record: dict, since: int) -> list[dict]:
        log = self.member_log.get(record["id"], [])
        start = bisect.bisect_right(log, since, key=lambda entry: entry[0])
        touched = {mid: typ for _, mid, typ in log[start:]}
        current = {mid for mid, _ in record["_members"]}
        out = []
        for mid, typ in touched.items():
            entry = {"@odata.type": typ, "id": mid}
            if mid not in current:
                entry["@removed"] = {"reason": "deleted"}
            out.append(entry)
        return out

    def _change_members(self, group_id: str, add=(), remove=()) -> None:
        record = self.groups.objects[group_id]
        members = dict(record["_members"])
        log = self.member_log.setdefault(group_id, [])
        self.seq += 1
        for mid in add:
            if mid not in members:
                members[mid] = self._type_of(mid)
                log.append((self.seq, mid, members[mid]))
        for mid in remove:
            if mid in members:
                log.append((self.seq, mid, members.pop(mid)))
        self.groups.objects[group_id] = {**record, "_members": tuple(members.items())}
        self.groups.log_seqs.append(self.seq)
        self.groups.log_ids.append(group_id)

    def _put(self, collection: Collection, record: dict, old: dict | None = None) -> None:
        """Store a new or changed record (``old``: the one it replaces)."""
        self.seq += 1
        oid = record["id"]
        collection.objects[oid] = record
        collection.removed.pop(oid, None)
        collection.changed[oid] = self.seq
        seqs = dict(collection.prop_seqs.get(oid, {})) if old else {}
        for name, value in record.items():
            if old is None or old.get(name) != value:
                seqs[name] = self.seq
        collection.prop_seqs[oid] = seqs
        collection.log_seqs.append(self.seq)
        collection.log_ids.append(oid)

    def _remove(self, collection: Collection, oid: str, permanent: bool) -> None:
        self.seq += 1
        record = collection.objects.pop(oid)
        collection.removed[oid] = (self.seq, "deleted" if permanent else "changed", record)
        collection.log_seqs.append(self.seq)
        collection.log_ids.append(oid)

    def _collection(self, kind: str) -> Collection:
        return self.users if kind == "users" else self.groups

    def _type_of(self, oid: str) -> str:
        return GROUP_TYPE if oid in self.groups.objects else USER_TYPE


def _project(record: dict, properties: tuple[str, ...], select) -> dict:
    names = properties if not select else [p for p in select if p in properties]
    out = {"id": record["id"]}
    for name in names:
        out[name] = record.get(name)
    return out


def _internal(attrs: dict) -> dict:
    """Map the public ``manager`` keyword to the internal ``_manager`` field."""
    if "manager" in attrs:
        attrs = dict(attrs)
        attrs["_manager"] = attrs.pop("manager")
    return attrs


def _identity(item):
    return item
