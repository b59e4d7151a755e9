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

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from bridge.delivery.attempts import Attempt, Logged, Result, log_attempt, log_entry
from bridge.delivery.deliveries import Closings, Deliveries, Snapshot
from bridge.delivery.planning import (
    Plan,
    Planner,
    State,
    group_in_scope,
    holding,
    intent,
    is_member,
    listed_members,
    member_ids,
    members_of,
    next_state,
    takes_access_away,
    wanted_members,
)
from bridge.directory.records import Directory
from bridge.directory.stored import Kind, Record
from bridge.observability import metrics, request_context
from bridge.observability.masking import mask_text
from bridge.scim.resource_types import ResourceType
from bridge.targets.base import Change, Connector, TargetError
from bridge.targets.model import Target

log = logging.getLogger(__name__)

States = dict[str, State]
"""The target's states of several items of one kind, by id."""

MAX_RETRY_DELAY = 300.0
"""Longest wait between two attempts of one delivery (seconds)."""

LOCK_BUSY_DELAY = 1.0
"""Wait before retrying a resource whose delivery another worker is running."""


SETTLED = frozenset({Result.DELIVERED, Result.NOOP, Result.HELD, Result.SHADOW, Result.DEAD})
"""Results after which nothing more will be done for an item (until it changes again)."""


@dataclass(frozen=True)
class Policy:
    """Retry, breaker and guard settings (from Settings)."""

    max_attempts: int = 8
    base_delay: float = 1.0
    breaker_threshold: int = 5

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; a target's Retry-After wins when longer."""
        backoff: float = min(MAX_RETRY_DELAY, self.base_delay * (2**attempt)) * random.uniform(
            0.5, 1.5
        )
        return max(backoff, retry_after or 0.0)


@dataclass(frozen=True)
class Again:
    """An item to deliver again later: its next attempt number and the wait before it."""

    kind: Kind
    id: str
    attempt: int
    delay: float


@dataclass
class BatchOutcome:
    """What a batch left to do, and what happened to each item."""

    retries: list[Again] = field(default_factory=list)
    follow_ups: dict[tuple[Kind, str], None] = field(default_factory=dict)
    """Resources to deliver again because this batch changed what they depend on."""
    results: dict[str, Result] = field(default_factory=dict)
    breaker_opened: bool = False
    deferral: float | None = None
    """Set once the target failed in a retryable way: the batch's remaining items wait
    this long instead of each spending a timeout on a target that is down."""

    @property
    def settled(self) -> list[str]:
        """Items with a final result in this batch (``kind:id``)."""
        return [item for item, result in self.results.items() if result in SETTLED]


@dataclass
class _Ahead:
    """The batch's item after the one in delivery, and its snapshot once read ahead.

    A delivery that records an intent before it sends (see planning.intent) reads the next
    item's snapshot in that round trip: one round trip per item instead of two. The item
    uses it in its turn; one that is deferred instead lets its lock go."""

    item: tuple[Kind, str] | None = None
    snap: Snapshot | None = None

    def take(self, kind: Kind, rid: str, following: tuple[Kind, str] | None) -> Snapshot | None:
        """The snapshot read ahead for this item, if any; ``following`` is next."""
        snap = self.snap if self.item == (kind, rid) else None
        self.item, self.snap = following, None
        return snap


@dataclass(frozen=True)
class _Batch:
    """What every item of one delivery job shares: where it goes, the job, the outcome."""

    target: Target
    connector: Connector
    token: str
    attempt: int
    bypass_guard: bool
    outcome: BatchOutcome
    closings: Closings = field(default_factory=Closings)
    """What closes the items delivered so far: it goes with the next item's snapshot."""
    ahead: _Ahead = field(default_factory=_Ahead)


@dataclass
class _Item:
    """One item's delivery in flight: its batch, the resource, and what the snapshot read."""

    batch: _Batch
    kind: Kind
    rid: str
    snap: Snapshot
    started: float = field(default_factory=time.perf_counter)
    request_id: str | None = None

    @property
    def target(self) -> Target:
        """Where the item goes."""
        return self.batch.target

    def attempt(self) -> Attempt:
        """This attempt, as its log line and delivery log entry name it."""
        b = self.batch
        return Attempt(
            b.target, self.kind, self.rid, b.attempt + 1, b.token, self.started, self.request_id
        )


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
        self.planner = Planner(resource_types)
        self.policy = policy or Policy()

    def deliver(
        self,
        target: Target,
        connector: Connector,
        items: list[tuple[Kind, str]],
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
        # (one item alone: its snapshot reads the breaker in the same round trip)
        if len(items) > 1 and not target.shadow and self.deliveries.is_open(target.id):
            # quarantined: park the whole batch at once, for the probe to release
            self.deliveries.hold_all(target.id, items, "circuit", "target quarantined")
            outcome.results = {f"{k}:{r}": Result.HELD for k, r in items}
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
        batch = _Batch(target, connector, token, attempt, bypass_guard, outcome)
        try:
            self._deliver_batch(batch, items, origins)
        except BaseException:
            self._close_quietly(batch)
            raise
        self.deliveries.close_all(batch.closings)
        return outcome

    def _deliver_batch(
        self, batch: _Batch, items: list[tuple[Kind, str]], origins: dict[str, str]
    ) -> None:
        """Each item in turn, users first, until the target fails in a retryable way. An
        item named twice is delivered once (a snapshot read ahead would not see the first
        delivery's closing)."""
        outcome, attempt = batch.outcome, batch.attempt
        users = [i for i in items if i[0] == "user"]
        groups = [i for i in items if i[0] != "user"]
        ordered = list(dict.fromkeys(users + groups))
        for n, (kind, rid) in enumerate(ordered):
            key = f"{kind}:{rid}"
            following = ordered[n + 1] if n + 1 < len(ordered) else None
            if outcome.deferral is not None:
                self._let_go(batch, kind, rid, following)
                outcome.retries.append(Again(kind, rid, attempt, outcome.deferral))
                outcome.results[key] = Result.DEFERRED
                continue
            if kind == "group":
                # this delivery sees every user state the batch wrote before it
                outcome.follow_ups.pop((kind, rid), None)
            with request_context.bound(origins.get(key)):
                result = self._deliver_item(batch, kind, rid, following)
            outcome.results[key] = result
            if result in (Result.NOOP, Result.BUSY):
                metrics.observe_delivery(batch.target.name, str(result), None)

    def _close_quietly(self, batch: _Batch) -> None:
        """Close what the batch delivered before it failed, if Redis takes it: otherwise the
        items' locks expire and their next delivery finds their targets as they are."""
        ahead = batch.ahead.item
        if ahead is not None:
            self._let_go(batch, *ahead, None)
        held = len(batch.closings.calls)
        try:
            self.deliveries.close_all(batch.closings)
        except Exception:
            log.warning("could not close %d deliveries", held, exc_info=True)

    def _let_go(
        self, batch: _Batch, kind: Kind, rid: str, following: tuple[Kind, str] | None
    ) -> None:
        """An item that will not be delivered now lets go of the lock its snapshot read
        ahead took (with the closings)."""
        snap = batch.ahead.take(kind, rid, following)
        if snap is not None and snap.locked:
            self.deliveries.unlock(batch.target.id, kind, rid, batch.token, batch.closings)

    # --- one item -------------------------------------------------------------------------
    def _deliver_item(
        self, batch: _Batch, kind: Kind, rid: str, following: tuple[Kind, str] | None
    ) -> Result:
        """Read the item (unless it was read ahead), plan its change, then act on the plan."""
        target = batch.target
        snap = batch.ahead.take(kind, rid, following) or self.deliveries.snapshot(
            target.id, kind, rid, batch.token, self.directory, batch.closings
        )
        if not snap.locked:
            batch.outcome.retries.append(Again(kind, rid, batch.attempt, LOCK_BUSY_DELAY))
            return Result.BUSY
        it = _Item(batch, kind, rid, snap, request_id=request_context.current())
        try:
            plan = self._plan(it)
        except TargetError as exc:
            return self._failed(it, None, exc)
        if plan is None:
            self.deliveries.unlock(target.id, kind, rid, batch.token, batch.closings)
            return Result.NOOP
        return self._act(it, plan)

    def _act(self, it: _Item, plan: Plan) -> Result:
        """Hold, log (shadow) or send the planned change, and keep the books."""
        target, change = it.target, plan.change
        try:
            held = self._hold_reason(it, change)
            if held is not None:
                reason, why = held
                self.deliveries.hold(target.id, it.kind, it.rid, reason)
                self._finish(it, change, None, Logged.HELD, None, why)
                return Result.HELD
            if target.shadow:
                self._finish(it, change, None, Logged.SHADOW, None, None)
                return Result.SHADOW
            may_hold = intent(change, it.snap.state)
            if may_hold is not None:
                self._remember(it, may_hold)
            applied = it.batch.connector.apply(change)
        except TargetError as exc:
            return self._failed(it, change, exc)
        if takes_access_away(change):
            self.deliveries.count_deprovision(target.id, it.kind, it.rid)
        new_state = next_state(change, it.snap.state, applied.remember)
        self._finish(it, change, new_state, Logged.DELIVERED, applied.status, None)
        self._follow_up(it, change, new_state, plan.wanted_members, applied.remember)
        return Result.DELIVERED

    def _remember(self, it: _Item, state: State) -> None:
        """Record the intent, and read the batch's next item in the same round trip."""
        batch = it.batch
        following = batch.ahead.item
        read = None
        if following is not None:
            read = self.deliveries.read(batch.target.id, *following, batch.token, self.directory)
        batch.ahead.snap = self.deliveries.remember(
            batch.target.id, it.kind, it.rid, state, batch.closings, read
        )

    def _hold_reason(self, it: _Item, change: Change) -> tuple[str, str] | None:
        """Why the change must wait, if it must: for an admin (``guard``) or for the target
        to recover (``circuit``), with the reason the delivery log shows."""
        guarded = takes_access_away(change) and not it.batch.bypass_guard
        if guarded and self._guard_tripped(it.target):
            return "guard", "deletion guard"
        if it.snap.breaker_open and not it.target.shadow:
            return "circuit", "target quarantined"
        return None

    def _failed(self, it: _Item, change: Change | None, exc: TargetError) -> Result:
        """Count the failure; retry later, or dead-letter the item after its last attempt.
        What closes the items before it goes first (a success resets the breaker's count)."""
        target, outcome, attempt = it.target, it.batch.outcome, it.batch.attempt
        self.deliveries.close_all(it.batch.closings)
        if exc.retryable and self.deliveries.record_failure(
            target.id, self.policy.breaker_threshold
        ):
            outcome.breaker_opened = True
        attempts = attempt + 1
        error = mask_text(str(exc))
        entry = log_entry(it.attempt(), change, Logged.FAILED, exc.status, attempts, error)
        token = it.batch.token
        if exc.retryable and attempts < self.policy.max_attempts:
            self.deliveries.finish(
                target.id, it.kind, it.rid, token, state=None, entry=entry, counter="retried"
            )
            delay = self.policy.delay(attempt, exc.retry_after)
            outcome.retries.append(Again(it.kind, it.rid, attempts, delay))
            outcome.deferral = delay
            log_attempt(it.attempt(), change, "retry", exc.status, error, delay)
            return Result.RETRY
        self.deliveries.finish(
            target.id, it.kind, it.rid, token, state=None, entry=entry, counter="dead"
        )
        self.deliveries.bury(target.id, it.kind, it.rid, error, attempts)
        log_attempt(it.attempt(), change, "dead", exc.status, error, None)
        if exc.retryable:
            outcome.deferral = self.policy.delay(attempt, exc.retry_after)
        return Result.DEAD

    def _finish(
        self,
        it: _Item,
        change: Change,
        state: State | None,
        outcome: Logged,
        status: int | None,
        error: str | None,
    ) -> None:
        """Log the delivery, save the target's new state (if any), release the lock."""
        attempt = it.attempt()
        entry = log_entry(attempt, change, outcome, status, it.batch.attempt + 1, error)
        if outcome == Logged.SHADOW:
            entry["payload"] = change.payload
            entry["members_added"] = change.members_added
            entry["members_removed"] = change.members_removed
        self.deliveries.finish(
            it.target.id,
            it.kind,
            it.rid,
            it.batch.token,
            state=state,
            entry=entry,
            counter=str(outcome),
            success=outcome == Logged.DELIVERED,
            closings=it.batch.closings,
        )
        log_attempt(attempt, change, outcome, status, error, None)

    def _guard_tripped(self, target: Target) -> bool:
        guard = target.deletion_guard
        return (
            self.deliveries.deprovisions_within(target.id, guard["window_seconds"]) >= guard["max"]
        )

    # --- planning (reads, then the planner's pure functions) ------------------------------
    def _plan(self, it: _Item) -> Plan | None:
        """The change the target needs, with (for groups) the members it was planned for."""
        record, state = it.snap.record, it.snap.state
        if it.kind == "user":
            return self.planner.plan_user(it.target, it.rid, record, state)
        states = self._member_states(it, record, state)
        return self.planner.plan_group(it.target, it.rid, record, state, states)

    def _member_states(self, it: _Item, record: Record | None, state: State) -> States:
        """What the target holds of each directory member and each member it lists (read
        after what closes the users delivered before)."""
        if record is None:
            return {}
        ids = member_ids(it.target, record, state)
        return self.deliveries.states(it.target.id, "user", ids, it.batch.closings)

    # --- follow-ups -----------------------------------------------------------------------
    def _follow_up(
        self,
        it: _Item,
        change: Change,
        new_state: State,
        wanted: dict[str, str | None] | None,
        remember: dict[str, Any],
    ) -> None:
        """Ask for the deliveries this one may have made necessary (see the module doc)."""
        outcome, record = it.batch.outcome, it.snap.record
        if it.kind == "user":
            if holding(it.snap.state) != holding(new_state):
                self._follow_up_groups(it, new_state)
            return
        if record is None or change.action == "delete":
            return
        recreated = "members" in remember  # the target lost the group's earlier members
        moved = wanted is not None and wanted != wanted_members(
            it.target,
            record,
            members_of(new_state),
            self._member_states(it, record, new_state),
        )
        if recreated or moved:
            outcome.follow_ups[("group", it.rid)] = None

    def _follow_up_groups(self, it: _Item, new_state: State) -> None:
        """The user's groups at the target whose membership of the user is now wrong."""
        target, record = it.target, it.snap.record
        if not target.receives("group") or record is None:
            return
        groups = [g for g in record.groups or [] if group_in_scope(target, g)]
        member = is_member(target, new_state)
        states = self.deliveries.states(target.id, "group", groups, it.batch.closings)
        for gid, state in states.items():
            if state.get("present") and (it.rid in listed_members(state)) != member:
                it.batch.outcome.follow_ups[("group", gid)] = None
