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
- ``job``: the webhook delivery as an RQ job of its own (``Jobs.deliver``), run by one
  ``LaneWorker`` in burst mode: what RQ spends per job (queueing through the lane's rate
  limit, dequeue, registries, heartbeats, the timeout timer) on top of ``webhook``.

What is measured is this process (every thread) and redis-py, not Redis nor the sinks.
Under ``--callgrind`` the figures repeat to within a fraction of a per cent whatever else
the machine does; CPU µs move with the machine's load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import entra
from bench.callgrind import Marks
from bench.callgrind import totals as callgrind_totals
from bench.common import save_run
from bench.fanout_drive import Child, python_module, wait_listening

WHAT = (__doc__ or "").splitlines()[0]
RESULTS = Path(__file__).parent / "results" / "delivery_cpu.json"
SCENARIOS = ("webhook", "scim", "job")
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
    common = {
        "auth": {"type": "none"},
        "resources": ["users", "groups"],
        "scope": {"type": "all"},
        "deprovision": "disable",
        "enabled": True,
        "shadow": False,
        "deletion_guard": {"max": 100, "window_seconds": 3600},
    }
    webhook = services.targets.create(
        {
            **common,
            "name": "sink-webhook",
            "kind": "webhook",
            "url": f"http://127.0.0.1:{ports['webhook']}/events",
            "signing_secret": new_secret(),
        }
    )
    scim = services.targets.create(
        {
            **common,
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


def callgrind(args: argparse.Namespace) -> dict[str, float]:
    """Run the measurement under callgrind; instructions per delivery of each scenario."""
    found = callgrind_totals(
        "bench.delivery_cpu",
        ["--deliveries", str(args.deliveries), "--scenarios", ",".join(args.scenarios)],
    )
    return {name: found[name] / args.deliveries for name in args.scenarios if name in found}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--deliveries", type=int, default=400, help="measured per scenario")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--callgrind", action="store_true", help="instructions per delivery (slow)")
    p.add_argument("--save", metavar="NAME", help="record the figures in results/delivery_cpu.json")
    p.add_argument("--marks", help=argparse.SUPPRESS)  # the helper library, under callgrind
    args = p.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.marks:
        measure(args.scenarios, args.deliveries, Marks(args.marks))
        return
    figures: dict[str, dict[str, float]] = {}
    if args.callgrind:
        figures["ir_per_delivery"] = callgrind(args)
    else:
        figures.update(measure(args.scenarios, args.deliveries, Marks(None)))
    for name in args.scenarios:
        row = "  ".join(f"{k} {f[name]:>12,.1f}" for k, f in figures.items() if name in f)
        print(f"{name:10s} {row}")
    if args.save:
        save_run(RESULTS, args.save, figures, WHAT, deliveries_per_scenario=args.deliveries)


if __name__ == "__main__":
    main()
