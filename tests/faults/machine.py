"""Random Entra sequences against a live bridge: hypothesis's RuleBasedStateMachine.

Rules are what Entra and an operator do (create, PATCH, disable and enable users, change
group members, delete users and groups, change a target's scope, make a target fail for
a while); ``check`` waits for quiescence and asserts the convergence invariant, which
teardown asserts once more. The same machine runs with the bounded :data:`CI` settings in
the test suite and with :data:`SOAK` for long runs (``FAULTS_HYPOTHESIS_PROFILE=soak``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    rule,
)

from tests.faults.client import BridgeClient, TargetHandle
from tests.faults.invariant import converge

CI = settings(
    max_examples=6,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.generate,),
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
"""Bounded for the suite: a handful of fixed sequences of ten steps, not shrunk (each
step drives real processes, and a shrink would replay dozens of sequences)."""

SOAK = settings(CI, max_examples=200, stateful_step_count=40, derandomize=False)
"""A long run with fresh random sequences."""

PROFILES = {"ci": CI, "soak": SOAK}


def chosen_settings() -> settings:
    """The settings ``FAULTS_HYPOTHESIS_PROFILE`` names (``ci`` when unset)."""
    return PROFILES[os.environ.get("FAULTS_HYPOTHESIS_PROFILE", "ci")]


CONVERGE_SECONDS = 30.0
"""How long each check waits for quiescence and the invariant."""

TITLES = ("Engineer", "Manager", "Director", None)


class EntraSequences(RuleBasedStateMachine):
    """Set ``bridge`` (a client of a live bridge) and ``fakes`` before running."""

    bridge: BridgeClient
    fakes = None

    users = Bundle("users")
    groups = Bundle("groups")

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[TargetHandle] = []

    @initialize(target=groups)
    def add_targets(self) -> str:
        """A webhook scoped to a first group (role-based provisioning), and an outbound
        SCIM target that receives everyone."""
        first = self.bridge.create_group()["id"]
        self.targets = [
            self.fakes.webhook(
                self.bridge, scope={"type": "groups", "groups": [first]}, deprovision="disable"
            ),
            self.fakes.scim(self.bridge, deprovision="delete"),
        ]
        for handle in self.targets:  # a new target gets what exists through a resync
            self.bridge.admin("POST", f"/targets/{handle.id}/sync")
        return first

    @rule(target=users, active=st.booleans())
    def create_user(self, active: bool) -> str:
        return self.bridge.create_user(active=active)["id"]

    @rule(target=groups)
    def create_group(self) -> str:
        return self.bridge.create_group()["id"]

    @rule(user=users, title=st.sampled_from(TITLES))
    def change_title(self, user: str, title: str | None) -> None:
        if title is None:
            self.bridge.patch_user(user, {"op": "remove", "path": "title"})
        else:
            self.bridge.set_user(user, "title", title)

    @rule(user=users, active=st.booleans())
    def set_active(self, user: str, active: bool) -> None:
        self.bridge.set_user(user, "active", active)

    @rule(group=groups, user=users)
    def add_member(self, group: str, user: str) -> None:
        self.bridge.members(group, "add", [user])

    @rule(group=groups, user=users)
    def remove_member(self, group: str, user: str) -> None:
        self.bridge.members(group, "remove", [user])

    @rule(user=consumes(users))
    def delete_user(self, user: str) -> None:
        self.bridge.delete("User", user)

    @rule(group=consumes(groups))
    def delete_group(self, group: str) -> None:
        self.bridge.delete("Group", group)

    @rule(which=st.sampled_from([0, 1]), scoped=st.lists(groups, max_size=2, unique=True))
    def rescope(self, which: int, scoped: list[str]) -> None:
        """Scope ``all`` for no group, else the groups drawn; then the resync an operator runs."""
        handle = self.targets[which]
        scope = {"type": "groups", "groups": scoped} if scoped else {"type": "all"}
        self.bridge.change_target(handle, scope=scope)
        self.bridge.admin("POST", f"/targets/{handle.id}/sync")

    @rule(which=st.sampled_from([0, 1]), failures=st.integers(1, 3))
    def fail_for_a_while(self, which: int, failures: int) -> None:
        self.targets[which].fake.knobs.fail(failures, 503)

    @rule()
    def check(self) -> None:
        converge(self.bridge, self.targets, timeout=CONVERGE_SECONDS)

    def teardown(self) -> None:
        try:
            if self.targets:
                converge(self.bridge, self.targets, timeout=CONVERGE_SECONDS)
        finally:
            self.bridge.remove_targets()
            self.bridge.clear_directory()
            self.bridge.wait_quiet(CONVERGE_SECONDS)
