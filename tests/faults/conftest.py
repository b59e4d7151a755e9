"""Fixtures of the fault suite: real bridge processes, fake targets, the bridge's clients.

``bridge`` is a client of one stack shared by the tests that break no process; it starts
each test with an empty directory and no targets. Tests that kill or restart processes
get stacks of their own from ``make_stack``. Every stack's process logs are attached to
the report of a test that fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from tests.fakes.scim_target import ScimTarget
from tests.fakes.webhook_target import WebhookTarget
from tests.faults.client import BridgeClient, TargetHandle
from tests.faults.harness import Stack

logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request buries failures

STACKS = pytest.StashKey[list[Stack]]()

CLEAN_TIMEOUT = 30.0
"""Seconds the shared stack may take to become quiet after a test's clean-up."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        for stack in item.stash.get(STACKS, []):
            report.sections.append((f"bridge processes in {stack.folder}", stack.logs()))
    return report


def _track(request: pytest.FixtureRequest, stack: Stack) -> None:
    request.node.stash.setdefault(STACKS, []).append(stack)


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("shared"))
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture
def bridge(shared_stack: Stack, request) -> Iterator[BridgeClient]:
    """A client of the shared stack, which starts with no targets and an empty directory."""
    _track(request, shared_stack)
    dead = [p.name for p in shared_stack.processes() if not p.alive()]
    assert not dead, f"a shared bridge process exited: {dead}\n{shared_stack.logs()}"
    client = BridgeClient(shared_stack)
    _reset(client)
    yield client
    try:
        _reset(client)
    finally:
        client.close()


def _reset(client: BridgeClient) -> None:
    client.remove_targets()
    client.clear_directory()
    assert client.wait_quiet(CLEAN_TIMEOUT), f"the shared bridge stayed busy: {client.status()}"


@pytest.fixture
def make_stack(tmp_path_factory, request) -> Iterator[Callable[..., Stack]]:
    """Start a stack of one's own (``make_stack(BRIDGE_X="1")``); stopped after the test."""
    stacks: list[Stack] = []

    def make(**overrides: str) -> Stack:
        stack = Stack(tmp_path_factory.mktemp("stack"), overrides=overrides)
        stacks.append(stack)
        _track(request, stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()


class Fakes:
    """Starts fake targets and registers them with a bridge; stops them all at the end."""

    def __init__(self) -> None:
        self.started: list[WebhookTarget | ScimTarget] = []

    def webhook(self, bridge: BridgeClient, **settings) -> TargetHandle:
        fake = WebhookTarget("whsec_placeholder").start()
        self.started.append(fake)
        return bridge.add_webhook(fake, **settings)

    def scim(self, bridge: BridgeClient, **settings) -> TargetHandle:
        fake = ScimTarget().start()
        self.started.append(fake)
        return bridge.add_scim(fake, **settings)

    def stop(self) -> None:
        for fake in self.started:
            fake.stop()


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    made = Fakes()
    yield made
    made.stop()
