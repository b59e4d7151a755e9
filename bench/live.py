"""A live bridge for benchmarks, as ``serve.sh`` runs it: AOF Redis, the web tier and
delivery workers, each a process of its own, plus recording sinks (bench.sink)."""

from __future__ import annotations

from pathlib import Path

import redis

from bench.fanout_drive import Child, Receipts, python_module, wait_listening
from bridge.directory.tokens import TokenStore
from bridge.runtime.embedded_redis import EmbeddedRedis, free_port
from bridge.runtime.serve import web_command
from bridge.scim.resource_types import build_resource_types
from bridge.targets.secrets import SecretBox
from bridge.targets.signing import new_secret
from bridge.targets.store import TargetStore

PREFIX = "bridge"


class LiveBridge:
    """AOF Redis, the web tier and ``workers`` delivery workers, as serve.sh starts them."""

    def __init__(self, workdir: Path, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.worker_count = workers
        self.extra_env = env or {}
        self.workers: list[Child] = []
        self.started_workers = 0
        self.redis_server = EmbeddedRedis(workdir / "redis", appendonly=True)
        self.port = free_port()
        self.children: list[Child] = []

    def start(self) -> None:
        self.redis_server.start()
        self.client = redis.Redis.from_url(self.redis_server.url)
        _, self.token = TokenStore(self.client, PREFIX).create("bench")
        self.env = {
            "REDIS_URL": self.redis_server.url,
            "BRIDGE_SECRET_KEYS": SecretBox.generate_key(),
            "BRIDGE_RATE_LIMIT": "0",
            "BRIDGE_GRAPH_INTERVAL_MINUTES": "0",
            **self.extra_env,
        }
        bind = f"127.0.0.1:{self.port}"
        web = Child("web", web_command(bind, 2, 4, False), self.env, self.workdir)
        web.start()
        self.children.append(web)
        wait_listening(web, self.port, "/readyz")
        self.start_workers()

    def start_workers(self) -> None:
        """Start the delivery workers (again, after they were killed)."""
        self.workers = []
        for _ in range(self.worker_count):
            self.started_workers += 1
            args = python_module("workers.run", "deliver")
            child = Child(f"worker{self.started_workers}", args, self.env, self.workdir)
            child.start()
            self.workers.append(child)
            self.children.append(child)

    def kill_workers(self) -> None:
        """SIGKILL every delivery worker process, as a crash or the OOM killer would."""
        for child in self.workers:
            child.kill()

    def sink(self, name: str, mode: str, *extra: str) -> tuple[int, Receipts]:
        port = free_port()
        out = self.workdir / f"{name}.tsv"
        args = python_module("bench.sink", "--mode", mode, "--port", str(port), "--out", str(out))
        child = Child(name, [*args, *extra], {}, self.workdir)
        child.start()
        self.children.append(child)
        wait_listening(child, port)
        return port, Receipts(out)

    def add_target(self, name: str, kind: str, url: str) -> None:
        store = TargetStore(
            self.client,
            PREFIX,
            SecretBox([self.env["BRIDGE_SECRET_KEYS"]]),
            build_resource_types([], []),
        )
        config = {"name": name, "kind": kind, "url": url, "auth": {"type": "none"}}
        if kind == "webhook":
            config["signing_secret"] = new_secret()
        store.create(config)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.redis_server.stop()
