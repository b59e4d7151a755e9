"""Delivery: bring one target in line with the directory's *current* state of a resource.

A delivery names a target and resources, never a change's content: it reads what the
directory holds now, works out what the target must do (create, update, deactivate,
delete, membership), and compares it with what it last brought the target to. A duplicate,
stale or reordered delivery therefore finds nothing to do. One delivery per target and
resource runs at a time (a Redis lock), so two workers never race on one resource.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass, field

import orjson

from bridge.deliveries import Deliveries, Snapshot, now_iso
from bridge.directory import Directory, Record, parse_member, parse_record
from bridge.scim.attributes import ResourceType
from bridge.scim.filter import matches
from bridge.targets.base import Change, Connector, TargetError
from bridge.targets.mapping import apply_mapping
from bridge.targets.model import Target

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 300.0
"""Longest wait between two attempts of one delivery (seconds)."""

LOCK_BUSY_DELAY = 1.0
"""Wait before retrying a resource whose delivery another worker is running."""


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


@dataclass
class Outcome:
    """What a batch left to do: items to retry later, and what happened to each."""

    retries: list[tuple[str, str, int, float]] = field(
        default_factory=list
    )  # kind, id, attempt, delay
    results: dict[str, str] = field(default_factory=dict)
    breaker_opened: bool = False


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
        attempt: int = 0,
        bypass_guard: bool = False,
        probing: bool = False,
    ) -> Outcome:
        """Deliver each (kind, id) item; failures become retries, dead letters or holds."""
        outcome = Outcome()
        for kind, rid in items:
            result = self._deliver_item(
                target, connector, kind, rid, attempt, bypass_guard, probing, outcome
            )
            outcome.results[f"{kind}:{rid}"] = result
        return outcome

    # --- one item -------------------------------------------------------------------------
    def _deliver_item(
        self,
        target: Target,
        connector: Connector,
        kind: str,
        rid: str,
        attempt: int,
        bypass_guard: bool,
        probing: bool,
        outcome: Outcome,
    ) -> str:
        token = self.deliveries.new_token()
        snap = self.deliveries.snapshot(target.id, kind, rid, self.directory.key(kind, rid), token)
        if not snap.locked:
            outcome.retries.append((kind, rid, attempt, LOCK_BUSY_DELAY))
            return "busy"
        started = time.perf_counter()
        change = None
        try:
            record = self._load(kind, rid, snap)
            change = self._plan(target, connector, kind, rid, record, snap.state, outcome)
            if change is None:
                self.deliveries.unlock(target.id, kind, rid, token)
                return "noop"
            deprovision = change.action in ("deactivate", "delete") and kind == "user"
            if deprovision and not bypass_guard and self._guard_tripped(target):
                self.deliveries.hold(target.id, kind, rid, "guard")
                self._finish(
                    target, change, token, None, "held", None, attempt, started, "deletion guard"
                )
                return "held"
            if target.shadow:
                self._finish(target, change, token, None, "shadow", None, attempt, started, None)
                return "shadow"
            if not probing and snap.breaker_open:
                self.deliveries.hold(target.id, kind, rid, "circuit")
                self._finish(
                    target,
                    change,
                    token,
                    None,
                    "held",
                    None,
                    attempt,
                    started,
                    "target quarantined",
                )
                return "held"
            applied = connector.apply(change)
        except TargetError as exc:
            return self._failed(target, kind, rid, change, token, exc, attempt, started, outcome)
        if deprovision:
            self.deliveries.count_deprovision(target.id, kind, rid)
        new_state = _next_state(change, snap.state, applied.remember)
        self._finish(
            target, change, token, new_state, "delivered", applied.status, attempt, started, None
        )
        if change.state.get("pending_members") or "members" in applied.remember:
            outcome.retries.append((kind, rid, attempt + 1, self.policy.delay(attempt, None)))
        return "delivered"

    def _failed(
        self,
        target: Target,
        kind: str,
        rid: str,
        change: Change | None,
        token: str,
        exc: TargetError,
        attempt: int,
        started: float,
        outcome: Outcome,
    ) -> str:
        if exc.retryable and self.deliveries.record_failure(
            target.id, self.policy.breaker_threshold
        ):
            outcome.breaker_opened = True
        attempts = attempt + 1
        entry = _entry(kind, rid, change, "failed", exc.status, attempts, started, str(exc))
        if exc.retryable and attempts < self.policy.max_attempts:
            self.deliveries.finish(
                target.id, kind, rid, token, state=None, entry=entry, counter="retried"
            )
            outcome.retries.append(
                (kind, rid, attempts, self.policy.delay(attempt, exc.retry_after))
            )
            return "retry"
        self.deliveries.finish(target.id, kind, rid, token, state=None, entry=entry, counter="dead")
        self.deliveries.bury(target.id, kind, rid, str(exc), attempts)
        log.warning("delivery of %s:%s to %s dead-lettered: %s", kind, rid, target.name, exc)
        return "dead"

    def _finish(
        self, target, change, token, state, outcome, status, attempt, started, error
    ) -> None:
        entry = _entry(change.kind, change.id, change, outcome, status, attempt + 1, started, error)
        if outcome == "shadow":
            entry["payload"] = change.payload
            entry["members_added"] = change.members_added
            entry["members_removed"] = change.members_removed
        self.deliveries.finish(
            target.id,
            change.kind,
            change.id,
            token,
            state=state,
            entry=entry,
            counter=outcome,
            success=outcome == "delivered",
        )

    def _guard_tripped(self, target: Target) -> bool:
        guard = target.deletion_guard
        return (
            self.deliveries.deprovisions_within(target.id, guard["window_seconds"]) >= guard["max"]
        )

    # --- planning -------------------------------------------------------------------------
    def _load(self, kind: str, rid: str, snap: Snapshot) -> Record | None:
        if snap.raw_record is None:
            return None
        record = parse_record(kind, rid, snap.raw_record)
        if kind == "user":
            record.groups = sorted(g.decode() for g in snap.derived)
        else:
            members = snap.derived.items()
            record.members = [parse_member(k.decode(), v.decode()) for k, v in members]
        return record

    def _plan(self, target, connector, kind, rid, record, state, outcome) -> Change | None:
        if kind == "user":
            return self._plan_user(target, rid, record, state)
        return self._plan_group(target, connector, rid, record, state, outcome)

    def _plan_user(
        self, target: Target, rid: str, record: Record | None, state: dict
    ) -> Change | None:
        present = bool(state.get("present"))
        wanted = record is not None and target.receives("user") and self._in_scope(target, record)
        active = record is not None and record.doc.get("active", True) is not False
        if not wanted or not active:
            if not present:
                return None  # never provisioned there: nothing to take away
            if record is None or target.deprovision == "delete":
                return _change(target, "user", rid, "delete", None, state)
            if state.get("active") is False:
                return None
            return _change(target, "user", rid, "deactivate", self._payload(target, record), state)
        payload = self._payload(target, record)
        if present and state.get("active", True) and state.get("digest") == _digest(payload):
            return None
        return _change(target, "user", rid, "update" if present else "create", payload, state)

    def _plan_group(self, target, connector, rid, record, state, outcome) -> Change | None:
        present = bool(state.get("present"))
        wanted = (
            record is not None
            and target.receives("group")
            and (target.scope["type"] != "groups" or rid in target.scope_groups)
        )
        if not wanted:
            return _change(target, "group", rid, "delete", None, state) if present else None
        payload = self._payload(target, record)
        before = set(state.get("members", []))
        desired = self._members_in_scope(target, record)
        newcomers = sorted(desired - before)
        known = self.deliveries.states(target.id, "user", newcomers)
        joining = {
            m: "present"
            if known.get(m, {}).get("present")
            else self._member_status(target, connector, m, outcome)
            for m in newcomers
        }
        missing = sorted(m for m, status in joining.items() if status == "pending")
        desired -= {m for m, status in joining.items() if status != "present"}
        added, removed = sorted(desired - before), sorted(before - desired)
        same = present and state.get("digest") == _digest(payload)
        if same and not added and not removed:
            if missing:
                raise TargetError(
                    f"members not yet in the target: {', '.join(missing)}", retryable=True
                )
            return None
        action = "none" if same else ("update" if present else "create")
        change = _change(target, "group", rid, action, payload, state, added, removed)
        refs = self.deliveries.states(target.id, "user", added + removed)
        change.member_refs = {uid: s["remote_id"] for uid, s in refs.items() if s.get("remote_id")}
        change.state = {**state, "pending_members": missing}
        return change

    def _members_in_scope(self, target: Target, record: Record) -> set[str]:
        users = [m["value"] for m in record.members or [] if m.get("type") == "User"]
        if not target.receives("user"):
            return set()
        if target.scope["type"] == "filter":
            rtype = self.resource_types["User"]
            return {
                r.id
                for r in self.directory.get_many("user", users)
                if matches(target.scope_filter, r.as_resource(), rtype)
            }
        return set(users)

    def _member_status(
        self, target: Target, connector: Connector, uid: str, outcome: Outcome
    ) -> str:
        """Deliver a user the target does not have yet, before it joins a group there:
        ``present`` once delivered, ``excluded`` when it is not meant to be there (out of
        scope, disabled), ``pending`` when its delivery failed or is running."""
        result = self._deliver_item(target, connector, "user", uid, 0, False, False, outcome)
        if result == "delivered":
            return "present"
        return "excluded" if result in ("noop", "shadow") else "pending"

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


def _digest(payload: dict | None) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _change(target, kind, rid, action, payload, state, added=(), removed=()) -> Change:
    basis = f"{target.id}|{kind}|{rid}|{action}|{_digest(payload)}|{','.join(added)}|{','.join(removed)}"
    key = "msg_" + hashlib.sha256(basis.encode()).hexdigest()[:32]
    return Change(kind, rid, action, payload, dict(state), key, list(added), list(removed))


def _next_state(change: Change, old: dict, remember: dict) -> dict:
    """What the target holds after ``change`` succeeded."""
    if change.action == "delete":
        return {"present": False}
    state = {k: v for k, v in old.items() if k != "pending_members"}
    remember = dict(remember)
    reset = remember.pop("members", None)
    if reset is not None:  # the connector says the target holds only these members now
        old = {**old, "members": reset}
    state.update(remember)
    state["present"] = True
    if change.payload is not None:
        state["digest"] = _digest(change.payload)
    if change.kind == "user":
        state["active"] = change.action != "deactivate"
    else:
        members = (set(old.get("members", [])) | set(change.members_added)) - set(
            change.members_removed
        )
        state["members"] = sorted(members)
    return state


def _entry(kind, rid, change, outcome, status, attempts, started, error) -> dict:
    return {
        "at": now_iso(),
        "kind": kind,
        "id": rid,
        "action": change.action if change else None,
        "outcome": outcome,
        "status": status,
        "attempts": attempts,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "error": error,
    }
