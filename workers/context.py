"""What a worker process needs, built once from its settings and shared by its threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import redis
from rq import Queue

from bridge.config import Settings
from bridge.deliveries import Deliveries
from bridge.directory import Directory
from bridge.extension import connect, resource_types_for, secret_box
from bridge.jobs import Jobs, queues_for
from bridge.relay import Policy, Relay
from bridge.resync import Runs
from bridge.targets.base import Connector
from bridge.targets.connectors import build_connector, timeouts
from bridge.targets.model import Target
from bridge.targets.store import TargetStore


@dataclass
class Context:
    settings: Settings
    redis: redis.Redis
    directory: Directory
    deliveries: Deliveries
    targets: TargetStore
    relay: Relay
    queues: dict[str, Queue]
    jobs: Jobs
    runs: Runs
    _connectors: dict[str, tuple[str, Connector]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connector(self, target: Target) -> Connector:
        """One connector (and HTTP connection pool) per target per process, shared by its
        threads (httpx clients are thread-safe); rebuilt when the target changes."""
        stamp = target.config.get("updated", "")
        with self._lock:
            cached = self._connectors.get(target.id)
            if cached is None or cached[0] != stamp:
                timeout = timeouts(
                    self.settings.target_connect_timeout, self.settings.target_read_timeout
                )
                cached = (stamp, build_connector(target, timeout))
                self._connectors[target.id] = cached
            return cached[1]


def build(settings: Settings) -> Context:
    client = connect(settings)
    resource_types = resource_types_for(settings)
    directory = Directory(client, settings.key_prefix)
    deliveries = Deliveries(client, settings.key_prefix)
    policy = Policy(
        max_attempts=settings.retry_max_attempts,
        base_delay=settings.retry_base_seconds,
        breaker_threshold=settings.breaker_threshold,
    )
    queues = queues_for(client)
    return Context(
        settings=settings,
        redis=client,
        directory=directory,
        deliveries=deliveries,
        targets=TargetStore(client, settings.key_prefix, secret_box(settings), resource_types),
        relay=Relay(directory, deliveries, resource_types, policy),
        queues=queues,
        jobs=Jobs(queues, settings.key_prefix, settings.target_concurrency),
        runs=Runs(client, settings.key_prefix),
    )


_installed: Context | None = None
_contexts: dict[str, Context] = {}
_lock = threading.Lock()


def install(ctx: Context) -> None:
    """Make ``ctx`` the process's context: a worker builds it once, at start-up."""
    global _installed
    _installed = ctx


def context() -> Context:
    """The process's context: the installed one, else one for the environment's settings
    (jobs run in-process by tests, whose settings change from test to test)."""
    if _installed is not None:
        return _installed
    settings = Settings.from_env()
    key = repr(settings)  # settings hold dicts (extension schemas): not hashable
    with _lock:
        if key not in _contexts:
            _contexts[key] = build(settings)
        return _contexts[key]
