"""Delivery: bring one target in line with the directory's *current* state of a resource.

A delivery names a target and resources, never a change's content: it reads what the
directory holds now, plans what the target must do (create, update, deactivate, delete,
membership), and compares it with what it last brought the target to. A duplicate,
stale or reordered delivery therefore finds nothing to do. One delivery per target and
resource runs at a time (a Redis lock), so two workers never race on one resource.

Resources depend on each other only through group membership, and the rule that ties
them is stated once: a group's members at a target are the directory's members that the
target holds as users (active ones only, when the target removes deprovisioned users from
its groups). A group delivery adds or removes members by that rule; a user delivery that
changes whether the target holds the user asks for the user's groups to be delivered
again (*follow-ups*), and a group delivery that sees its members' states move while it
ran asks for itself again. Whatever runs first, the last delivery sees the final states.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass, field

import orjson

from bridge.delivery.deliveries import Deliveries, Snapshot, now_iso
from bridge.directory.records import Directory, Record
from bridge.observability import context, metrics
from bridge.observability.masking import mask_text
from bridge.scim.filter_eval import matches
from bridge.scim.resource_types import ResourceType
from bridge.targets.base import Change, Connector, TargetError
from bridge.targets.mapping import apply_mapping
from bridge.targets.model import KEEPS_INACTIVE_MEMBERS, Target

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 300.0
"""Longest wait between two attempts of one delivery (seconds)."""

LOCK_BUSY_DELAY = 1.0
"""Wait before retrying a resource whose delivery another worker is running."""

SETTLED = frozenset({"delivered", "noop", "held", "shadow", "dead"})
"""Results after which nothing more will be done for an item (until it changes again)."""


@dataclass(frozen=True)
class Policy:
    """Retry, breaker and guard settings (from Settings)."""

    max_attempts: int = 8
    base_delay: float = 1.0
    breaker_threshold: int = 5

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; a target's Retry-After wins when longer."""
        backoff = min(MAX_RETRY_DELAY, self.base_delay * (2**attempt)) * random.uniform(0.5, 1.5)
        return max(backoff, retry_after or 0.0)


@dataclass(frozen=True)
class Again:
    """An item to deliver again later: its next attempt number and the wait before it."""

    kind: str
    id: str
    attempt: int
    delay: float


@dataclass
class BatchOutcome:
    """What a batch left to do, and what happened to each item."""

    retries: list[Again] = field(default_factory=list)
    follow_ups: dict[tuple[str, str], None] = field(default_factory=dict)
    """Resources to deliver again because this batch changed what they depend on."""
    results: dict[str, str] = field(default_factory=dict)
    breaker_opened: bool = False
    deferral: float | None = None
    """Set once the target failed in a retryable way: the batch's remaining items wait
    this long instead of each spending a timeout on a target that is down."""

    @property
    def settled(self) -> list[str]:
        """Items with a final result in this batch (``kind:id``)."""
        return [item for item, result in self.results.items() if result in SETTLED]


@dataclass
class _Item:
    """One item's delivery in flight: where it goes, and what the snapshot read."""

    target: Target
    connector: Connector
    kind: str
    rid: str
    token: str
    attempt: int
    bypass_guard: bool
    snap: Snapshot
    record: Record | None = None
    started: float = field(default_factory=time.perf_counter)
    request_id: str | None = None


class Relay:
    """Delivers resources to targets through their connectors."""

    def __init__(
        self,
        directory: Directory,
        deliveries: Deliveries,
        resource_types: dict[str, ResourceType],
        policy: Policy | None = None,
    ) -> None:
        self.directory = directory
        self.deliveries = deliveries
        self.resource_types = resource_types
        self.policy = policy or Policy()

    def deliver(
        self,
        target: Target,
        connector: Connector,
        items: list[tuple[str, str]],
        *,
        token: str,
        attempt: int = 0,
        bypass_guard: bool = False,
        origins: dict[str, str] | None = None,
    ) -> BatchOutcome:
        """Deliver each (kind, id) item, users first; failures become retries, dead letters
        or holds. ``token`` identifies the job (its delivery locks carry it); ``origins``
        (``kind:id`` -> request id) name the requests whose changes are delivered."""
        outcome = BatchOutcome()
        origins = origins or {}
        if not target.shadow and self.deliveries.is_open(target.id):
            # quarantined: park the whole batch at once, for the probe to release
            self.deliveries.hold_all(target.id, items, "circuit", "target quarantined")
            outcome.results = {f"{k}:{r}": "held" for k, r in items}
            metrics.DELIVERY_ATTEMPTS.labels(target.name, "held").inc(len(items))
            # one line for the batch: nothing was sent, and a backlog can be long
            log.info(
                "delivery held: %d resources for %s (target quarantined)",
                len(items),
                target.name,
                extra={
                    "target": target.name,
                    "target_id": target.id,
                    "outcome": "held",
                    "held": len(items),
                    "resources": [f"{k}:{r}" for k, r in items[:20]],
                    "request_ids": sorted(set(origins.values()))[:20],
                    "job": token,
                },
            )
            return outcome
        users = [i for i in items if i[0] == "user"]
        groups = [i for i in items if i[0] != "user"]
        for kind, rid in users + groups:
            key = f"{kind}:{rid}"
            if outcome.deferral is not None:
                outcome.retries.append(Again(kind, rid, attempt, outcome.deferral))
                outcome.results[key] = "deferred"
                continue
            if kind == "group":
                # this delivery sees every user state the batch wrote before it
                outcome.follow_ups.pop((kind, rid), None)
            with context.bound(origins.get(key)):
                result = self._deliver_item(
                    target, connector, kind, rid, token, attempt, bypass_guard, outcome
                )
            outcome.results[key] = result
            if result in ("noop", "busy"):
                metrics.observe_delivery(target.name, result, None)
        return outcome

    # --- one item -------------------------------------------------------------------------
    def _deliver_item(
        self,
        target: Target,
        connector: Connector,
        kind: str,
        rid: str,
        token: str,
        attempt: int,
        bypass_guard: bool,
        outcome: BatchOutcome,
    ) -> str:
        snap = self.deliveries.snapshot(target.id, kind, rid, token, self.directory)
        if not snap.locked:
            outcome.retries.append(Again(kind, rid, attempt, LOCK_BUSY_DELAY))
            return "busy"
        it = _Item(target, connector, kind, rid, token, attempt, bypass_guard, snap)
        it.request_id = context.current()
        change = None
        try:
            it.record = snap.record
            plan = self._plan(it)
            if plan is None:
                self.deliveries.unlock(target.id, kind, rid, token)
                return "noop"
            change, wanted_members = plan
            held = self._hold_reason(it, change)
            if held is not None:
                reason, why = held
                self.deliveries.hold(target.id, kind, rid, reason)
                self._finish(it, change, None, "held", None, why)
                return "held"
            if target.shadow:
                self._finish(it, change, None, "shadow", None, None)
                return "shadow"
            intent = _intent(change, snap.state)
            if intent is not None:
                self.deliveries.remember(target.id, kind, rid, intent)
            applied = connector.apply(change)
        except TargetError as exc:
            return self._failed(it, change, exc, outcome)
        if _takes_access_away(change):
            self.deliveries.count_deprovision(target.id, kind, rid)
        new_state = _next_state(change, snap.state, applied.remember)
        self._finish(it, change, new_state, "delivered", applied.status, None)
        self._follow_up(it, change, new_state, wanted_members, applied.remember, outcome)
        return "delivered"

    def _hold_reason(self, it: _Item, change: Change) -> tuple[str, str] | None:
        """Why the change must wait, if it must: for an admin (``guard``) or for the target
        to recover (``circuit``), with the reason the delivery log shows."""
        if _takes_access_away(change) and not it.bypass_guard and self._guard_tripped(it.target):
            return "guard", "deletion guard"
        if it.snap.breaker_open and not it.target.shadow:
            return "circuit", "target quarantined"
        return None

    def _failed(
        self, it: _Item, change: Change | None, exc: TargetError, outcome: BatchOutcome
    ) -> str:
        target = it.target
        if exc.retryable and self.deliveries.record_failure(
            target.id, self.policy.breaker_threshold
        ):
            outcome.breaker_opened = True
        attempts = it.attempt + 1
        error = mask_text(str(exc))
        entry = _entry(it, change, "failed", exc.status, attempts, error)
        if exc.retryable and attempts < self.policy.max_attempts:
            self.deliveries.finish(
                target.id, it.kind, it.rid, it.token, state=None, entry=entry, counter="retried"
            )
            delay = self.policy.delay(it.attempt, exc.retry_after)
            outcome.retries.append(Again(it.kind, it.rid, attempts, delay))
            outcome.deferral = delay
            _log_attempt(it, change, "retry", exc.status, error, delay)
            return "retry"
        self.deliveries.finish(
            target.id, it.kind, it.rid, it.token, state=None, entry=entry, counter="dead"
        )
        self.deliveries.bury(target.id, it.kind, it.rid, error, attempts)
        _log_attempt(it, change, "dead", exc.status, error, None)
        if exc.retryable:
            outcome.deferral = self.policy.delay(it.attempt, exc.retry_after)
        return "dead"

    def _finish(
        self,
        it: _Item,
        change: Change,
        state: dict | None,
        outcome: str,
        status: int | None,
        error: str | None,
    ) -> None:
        entry = _entry(it, change, outcome, status, it.attempt + 1, error)
        if outcome == "shadow":
            entry["payload"] = change.payload
            entry["members_added"] = change.members_added
            entry["members_removed"] = change.members_removed
        self.deliveries.finish(
            it.target.id,
            it.kind,
            it.rid,
            it.token,
            state=state,
            entry=entry,
            counter=outcome,
            success=outcome == "delivered",
        )
        _log_attempt(it, change, outcome, status, error, None)

    def _guard_tripped(self, target: Target) -> bool:
        guard = target.deletion_guard
        return (
            self.deliveries.deprovisions_within(target.id, guard["window_seconds"]) >= guard["max"]
        )

    # --- follow-ups -----------------------------------------------------------------------
    def _follow_up(
        self,
        it: _Item,
        change: Change,
        new_state: dict,
        wanted_members: dict[str, str | None] | None,
        remember: dict,
        outcome: BatchOutcome,
    ) -> None:
        """Ask for the deliveries this one may have made necessary (see the module doc)."""
        if it.kind == "user":
            if _holding(it.snap.state) != _holding(new_state):
                self._follow_up_groups(it, new_state, outcome)
            return
        if it.record is None or change.action == "delete":
            return
        recreated = "members" in remember  # the target lost the group's earlier members
        moved = wanted_members is not None and wanted_members != self._wanted_members(
            it.target, it.record, _members_of(new_state)
        )
        if recreated or moved:
            outcome.follow_ups[("group", it.rid)] = None

    def _follow_up_groups(self, it: _Item, new_state: dict, outcome: BatchOutcome) -> None:
        """The user's groups at the target whose membership of the user is now wrong."""
        target = it.target
        if not target.receives("group") or it.record is None:
            return
        groups = [g for g in it.record.groups or [] if _group_in_scope(target, g)]
        member = _is_member(target, new_state)
        for gid, state in self.deliveries.states(target.id, "group", groups).items():
            listed = _members_of(state) | (state.get("maybe") or {}).get("members", {})
            if state.get("present") and (it.rid in listed) != member:
                outcome.follow_ups[("group", gid)] = None

    # --- planning -------------------------------------------------------------------------
    def _plan(self, it: _Item) -> tuple[Change, dict[str, str | None] | None] | None:
        """The change the target needs, with (for groups) the members it was planned for."""
        if it.kind == "user":
            change = self._plan_user(it.target, it.rid, it.record, it.snap.state)
            return (change, None) if change else None
        return self._plan_group(it.target, it.rid, it.record, it.snap.state)

    def _plan_user(
        self, target: Target, rid: str, record: Record | None, state: dict
    ) -> Change | None:
        present = bool(state.get("present"))
        maybe = state.get("maybe") or {}
        wanted = record is not None and target.receives("user") and self._in_scope(target, record)
        active = record is not None and record.doc.get("active", True) is not False
        if not wanted or not active:
            if not present and not maybe.get("present"):
                return None  # never provisioned there: nothing to take away
            if record is None or target.deprovision == "delete":
                return _change(target, "user", rid, "delete", None, state)
            if state.get("active") is False and not maybe.get("active"):
                return None
            return _change(target, "user", rid, "deactivate", self._payload(target, record), state)
        payload = self._payload(target, record)
        same = state.get("active", True) and state.get("digest") == _digest(payload)
        if present and same and not maybe:
            return None
        return _change(target, "user", rid, "update" if present else "create", payload, state)

    def _plan_group(
        self, target: Target, rid: str, record: Record | None, state: dict
    ) -> tuple[Change, dict[str, str | None]] | None:
        present = bool(state.get("present"))
        maybe = state.get("maybe") or {}
        wanted = record is not None and target.receives("group") and _group_in_scope(target, rid)
        if record is None or not wanted:
            held = present or maybe.get("present")
            return (_change(target, "group", rid, "delete", None, state), {}) if held else None
        payload = self._payload(target, record)
        confirmed = _members_of(state)
        current = confirmed | (maybe.get("members") or {})  # perhaps there: named to remove
        states = self._member_states(target, record, current)
        desired = _wanted(target, record, current, states)
        added = sorted(desired.keys() - confirmed.keys())  # perhaps there: added to be sure
        removed = sorted(current.keys() - desired.keys())
        same = present and state.get("digest") == _digest(payload)
        if same and not added and not removed and not maybe:
            return None
        action = "none" if same else ("update" if present else "create")
        change = _change(target, "group", rid, action, payload, state, added, removed)
        refs = {u: desired[u] for u in added}
        refs |= {u: current[u] or states.get(u, {}).get("remote_id") for u in removed}
        change.member_refs = {u: ref for u, ref in refs.items() if ref}
        return change, desired

    def _wanted_members(
        self, target: Target, record: Record, current: dict[str, str | None]
    ) -> dict[str, str | None]:
        """:func:`_wanted` with the member states as they are now."""
        return _wanted(target, record, current, self._member_states(target, record, current))

    def _member_states(
        self, target: Target, record: Record, current: dict[str, str | None]
    ) -> dict[str, dict]:
        """What the target holds of each directory member and each member it lists."""
        if not target.receives("user"):
            return {}
        ids = set(_user_members(record)) | set(current)
        return self.deliveries.states(target.id, "user", sorted(ids))

    def _in_scope(self, target: Target, record: Record) -> bool:
        scope = target.scope["type"]
        if scope == "all":
            return True
        if scope == "groups":
            return bool(target.scope_groups.intersection(record.groups or ()))
        return matches(target.scope_filter, record.as_resource(), self.resource_types["User"])

    def _payload(self, target: Target, record: Record) -> dict:
        rtype = self.resource_types["User" if record.kind == "user" else "Group"]
        mapping = target.user_mapping if record.kind == "user" else target.group_mapping
        # the document and id only: derived attributes (groups, members) travel separately
        resource = dict(record.doc)
        resource["id"] = record.id
        return apply_mapping(mapping, resource, rtype)


def _wanted(
    target: Target, record: Record, current: dict[str, str | None], states: dict[str, dict]
) -> dict[str, str | None]:
    """The group's members the target must list, with the target's id for each: the
    directory's user members that the target holds (active ones, unless the target keeps
    deprovisioned users in its groups). A SCIM target's members are named by its own ids,
    so a user it holds under no known id cannot be listed."""
    if not target.receives("user"):
        return {}
    by_our_id = target.kind != "scim"
    wanted: dict[str, str | None] = {}
    for uid in _user_members(record):
        state = states.get(uid, {})
        ref = state.get("remote_id") or current.get(uid)
        if _is_member(target, state) and (by_our_id or ref):
            wanted[uid] = ref
    return wanted


def _user_members(record: Record) -> list[str]:
    return [m["value"] for m in record.members or [] if m.get("type") == "User"]


def _group_in_scope(target: Target, gid: str) -> bool:
    return target.scope["type"] != "groups" or gid in target.scope_groups


def _holding(state: dict) -> tuple[bool, bool]:
    """Whether the target holds the user, and whether as active."""
    return bool(state.get("present")), state.get("active", True) is not False


def _is_member(target: Target, user_state: dict) -> bool:
    """Whether a user in this state belongs in the target's copies of its groups."""
    present, active = _holding(user_state)
    return present and (active or target.deprovision in KEEPS_INACTIVE_MEMBERS)


def _members_of(state: dict) -> dict[str, str | None]:
    """A group state's members, our id -> the target's id (older states kept a plain list)."""
    members = state.get("members") or {}
    if isinstance(members, list):
        return dict.fromkeys(members)
    return dict(members)


MATCH_KEYS = {"user": ("userName", "externalId"), "group": ("displayName", "externalId")}
"""What identifies a resource the target may hold but the bridge never heard back about."""


def _intent(change: Change, state: dict) -> dict | None:
    """The state to record before ``change`` is sent: the last confirmed one, plus under
    ``maybe`` what the change may give once the target acts.

    A worker can die between the target acting and the bridge saving what it did. What a
    change *gives* (an account, an active flag, a membership) is therefore recorded first,
    with the keys that find the account again: a later delivery then takes away whatever
    should not be there, instead of never knowing it is there. The confirmed state stays
    as it was (it names the change, and so its idempotency key, across retries). None:
    the change gives nothing."""
    grants = change.action == "create" or (
        change.kind == "user" and change.action == "update" and state.get("active") is False
    )
    if not grants and not change.members_added:
        return None
    maybe = dict(state.get("maybe") or {})
    maybe["present"] = True
    if change.kind == "user":
        maybe["active"] = True
    added = {u: change.member_refs.get(u) for u in change.members_added}
    if added:
        maybe["members"] = {**(maybe.get("members") or {}), **added}
    if change.payload is not None and not state.get("present"):
        keys = MATCH_KEYS[change.kind]
        maybe["match"] = {k: change.payload[k] for k in keys if change.payload.get(k)}
    return {**state, "maybe": maybe}


def _takes_access_away(change: Change) -> bool:
    return change.kind == "user" and change.action in ("deactivate", "delete")


def _digest(payload: dict | None) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _change(target, kind, rid, action, payload, state, added=(), removed=()) -> Change:
    """The change, with an idempotency key that names it: the same across retries (the
    state they start from does not move), new for the same content sent again later
    (enabled again after a disable, say): ``seq`` counts the deliveries that succeeded."""
    seq = state.get("seq", 0)
    basis = f"{target.id}|{kind}|{rid}|{seq}|{action}|{_digest(payload)}|{','.join(added)}|{','.join(removed)}"
    key = "msg_" + hashlib.sha256(basis.encode()).hexdigest()[:32]
    return Change(kind, rid, action, payload, dict(state), key, list(added), list(removed))


def _next_state(change: Change, old: dict, remember: dict) -> dict:
    """What the target holds after ``change`` succeeded."""
    seq = old.get("seq", 0) + 1
    if change.action == "delete":
        return {"present": False, "seq": seq}
    remember = dict(remember)
    reset = remember.pop("members", None)  # the connector: the target holds only these now
    skipped = set(remember.pop("skipped_members", ()))
    state = {
        k: v for k, v in old.items() if k not in ("pending_members", "skipped_members", "maybe")
    }
    state.update(remember)
    state["present"] = True
    state["seq"] = seq
    if change.payload is not None:
        state["digest"] = _digest(change.payload)
    if change.kind == "user":
        state["active"] = change.action != "deactivate"
        return state
    members = dict.fromkeys(reset) if reset is not None else _members_of(old)
    for uid in change.members_removed:
        members.pop(uid, None)
    for uid in change.members_added:
        if uid not in skipped:
            members[uid] = change.member_refs.get(uid)
    state["members"] = members
    return state


ATTEMPT_LEVELS = {"retry": logging.WARNING, "dead": logging.ERROR}
"""Log level of a delivery attempt by outcome (others: INFO)."""


def _fields(
    target: Target,
    kind: str,
    rid: str,
    action: str | None,
    outcome: str,
    status: int | None,
    attempt: int,
    job: str,
) -> dict:
    """The structured fields of a delivery attempt's log line."""
    return {
        "target": target.name,
        "target_id": target.id,
        "resource": f"{kind}:{rid}",
        "action": action,
        "outcome": outcome,
        "status": status,
        "attempt": attempt,
        "job": job,
    }


def _log_attempt(
    it: _Item,
    change: Change | None,
    outcome: str,
    status: int | None,
    error: str | None,
    next_retry: float | None,
) -> None:
    """One line per delivery attempt (and its metrics): target, resource, action, HTTP
    status, attempt, next retry; with the request id of the change it delivers."""
    seconds = time.perf_counter() - it.started
    metrics.observe_delivery(it.target.name, outcome, seconds)
    action = change.action if change else None
    fields = _fields(it.target, it.kind, it.rid, action, outcome, status, it.attempt + 1, it.token)
    fields["latency_ms"] = round(seconds * 1000, 2)
    if next_retry is not None:
        fields["next_retry_seconds"] = round(next_retry, 3)
    if error:
        fields["error"] = error
    if it.request_id:
        fields["request_id"] = it.request_id
    retry = f", next retry in {next_retry:.1f} s" if next_retry is not None else ""
    log.log(
        ATTEMPT_LEVELS.get(outcome, logging.INFO),
        "delivery %s: %s %s %s:%s -> %s (attempt %d%s)%s",
        outcome,
        it.target.name,
        action or "-",
        it.kind,
        it.rid,
        status if status is not None else "-",
        it.attempt + 1,
        retry,
        f": {error}" if error else "",
        extra=fields,
    )


def _entry(
    it: _Item, change: Change | None, outcome: str, status: int | None, attempts: int, error
) -> dict:
    return {
        "at": now_iso(),
        "kind": it.kind,
        "id": it.rid,
        "action": change.action if change else None,
        "outcome": outcome,
        "status": status,
        "attempts": attempts,
        "latency_ms": round((time.perf_counter() - it.started) * 1000, 2),
        "error": error,
    }
