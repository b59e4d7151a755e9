"""CPU per delivery in a worker, in process: CPU µs, or instructions (Ir) under callgrind.

    python -m bench.delivery_cpu [--deliveries 400] [--scenarios webhook,scim,job]
    python -m bench.delivery_cpu --callgrind [--save NAME]   # instructions per delivery

A private redis-server (AOF ``everysec``), the two fast sinks of the fan-out benchmark
(``bench.sink``, separate processes, not measured) as a signed webhook target and an
outbound SCIM target, and the worker's services from ``create_app()``. Each scenario
delivers one new Entra-shaped user N times:

- ``webhook``: ``workers.deliver.deliver`` for the webhook target, called directly (the
  relay, its Redis round trips, signing, the HTTP request, the delivery log and line);
- ``scim``: the same for the SCIM target (its lookup by ``userName``, then the POST);
- ``batch``: the webhook deliveries 20 at a time, as a lane's job delivers what it took
  (``TAKE_LIMIT``): what a delivery costs when it shares its job's round trips;
- ``in_line``: the same batches once more, when the target already holds every user (a
  resync of a target in line: each item is read, planned and found to need nothing);
- ``job``: the webhook delivery as an RQ job of its own (``Jobs.deliver``), run by one
  ``LaneWorker`` in burst mode: what RQ spends per job (queueing through the lane's rate
  limit, dequeue, registries, heartbeats, the timeout timer) on top of ``webhook``.

What is measured is this process (every thread) and redis-py, not Redis nor the sinks.
Under ``--callgrind`` the figures repeat to within a fraction of a per cent whatever else
the machine does; CPU µs move with the machine's load.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import entra
from bench.callgrind import CpuBenchmark, Marks
from bench.fanout_drive import SINK_TARGET, Child, python_module, wait_listening

RESULTS = Path(__file__).parent / "results" / "delivery_cpu.json"
SCENARIOS = ("webhook", "scim", "batch", "in_line", "job")
WARM_UP = 30
"""Deliveries of each scenario made before it is measured (connections, first imports)."""


@contextmanager
def sinks(workdir: Path) -> Iterator[dict[str, int]]:
    """The fan-out benchmark's webhook and SCIM sinks, by mode: their ports."""
    from bridge.runtime.embedded_redis import free_port

    children: list[Child] = []
    ports: dict[str, int] = {}
    try:
        for mode in ("webhook", "scim"):
            port = free_port()
            out = workdir / f"sink-{mode}.tsv"
            child = Child(
                f"sink-{mode}",
                python_module("bench.sink", "--mode", mode, "--port", str(port), "--out", str(out)),
                {},
                workdir,
            )
            child.start()
            children.append(child)
            ports[mode] = port
        for child, port in zip(children, ports.values(), strict=True):
            wait_listening(child, port)
        yield ports
    finally:
        for child in children:
            child.stop()


def build(redis_url: str, ports: dict[str, int]) -> tuple[Any, dict[str, str]]:
    """The worker's services and the two targets' ids."""
    from app import create_app
    from bridge.runtime.config import Settings
    from bridge.targets.secrets import SecretBox
    from bridge.targets.signing import new_secret
    from workers.context import install

    env = {
        "REDIS_URL": redis_url,
        "BRIDGE_LOG_LEVEL": "WARNING",
        "BRIDGE_SECRET_KEYS": SecretBox.generate_key(),
    }
    settings = Settings.from_env(env)
    services = create_app(settings).extensions["bridge"]
    install(services)
    webhook = services.targets.create(
        {
            **SINK_TARGET,
            "name": "sink-webhook",
            "kind": "webhook",
            "url": f"http://127.0.0.1:{ports['webhook']}/events",
            "signing_secret": new_secret(),
        }
    )
    scim = services.targets.create(
        {
            **SINK_TARGET,
            "name": "sink-scim",
            "kind": "scim",
            "url": f"http://127.0.0.1:{ports['scim']}/scim/v2",
        }
    )
    return services, {"webhook": webhook["id"], "scim": scim["id"]}


def prepare(services: Any, targets: dict[str, str], name: str, count: int) -> Callable[[], None]:
    """Seed ``count`` users; the returned callable delivers all of them."""
    from workers.deliver import deliver

    tags = [f"{name}{i}" for i in range(count)]
    ids = entra.seed_users(services.redis, services.resource_types["User"], tags)
    services.redis.delete(services.directory.changes_key)  # no dispatcher here
    if name in ("webhook", "scim"):
        target_id = targets[name]

        def direct() -> None:
            for rid in ids:
                deliver(target_id, [["user", rid]])

        return direct
    if name in ("batch", "in_line"):
        from bridge.delivery.pending import TAKE_LIMIT

        def batched() -> None:
            for start in range(0, len(ids), TAKE_LIMIT):
                deliver(
                    targets["webhook"], [["user", rid] for rid in ids[start : start + TAKE_LIMIT]]
                )

        if name == "in_line":
            batched()  # delivered once before: what is measured finds nothing to do
        return batched
    return lambda: run_jobs(services, targets["webhook"], ids)


def run_jobs(services: Any, target_id: str, ids: list[str]) -> None:
    """One RQ job per user, queued as the relay queues its retries and run by one lane."""
    from bridge.delivery.jobs import QUEUE
    from workers.lanes import LaneWorker

    for rid in ids:
        services.jobs.deliver(target_id, [["user", rid]], concurrency=len(ids))
    worker = LaneWorker(
        [services.queues[QUEUE]], connection=services.redis, lost_after=15, worker_ttl=60
    )
    worker.work(burst=True, logging_level="WARNING")


def measure(names: list[str], count: int, marks: Marks) -> dict[str, dict[str, float]]:
    """CPU µs per delivery of each scenario, this process's (all its threads)."""
    from bridge.runtime.embedded_redis import EmbeddedRedis

    cpu_us: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, sinks(Path(tmp)) as ports:
        server = EmbeddedRedis(Path(tmp) / "redis", appendonly=True)
        server.start()
        try:
            services, targets = build(server.url, ports)
            for name in names:
                warm = prepare(services, targets, f"warm-{name}", WARM_UP)
                measured = prepare(services, targets, name, count)
                marks.start()
                warm()
                gc.collect()  # no full collection inside the window (see bench.request_cpu)
                marks.zero()
                cpu = time.process_time()
                measured()
                cpu = time.process_time() - cpu
                marks.dump(name)
                marks.stop()
                cpu_us[name] = cpu / count * 1e6
            services.redis.close()
        finally:
            server.stop()
    return {"cpu_us_per_delivery": cpu_us}


BENCHMARK = CpuBenchmark(
    module="bench.delivery_cpu",
    description=__doc__ or "",
    unit="delivery",
    many="deliveries",
    scenarios=SCENARIOS,
    measure=measure,
    results=RESULTS,
)


if __name__ == "__main__":
    BENCHMARK.main()
