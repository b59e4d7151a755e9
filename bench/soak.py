"""Soak: a mixed Entra workload for a long time, with random worker kills and Redis restarts.

    python -m bench.soak                 # 30 minutes
    python -m bench.soak --minutes 5

The real processes (AOF Redis, the web tier, a delivery and a sync worker) run as the
fault suite starts them (tests/faults/harness.py), with a signed webhook target scoped to
a group and a third-party SCIM server (scim2-server) receiving everyone. Rounds of about a
minute each run Entra's operations from several threads (create, update, disable and
enable users, add and remove group members, delete users) while a chaos thread SIGKILLs
every worker process or kill -9s Redis and starts it again on its data. After each round
the bridge must become quiet and every target must equal the directory projected through
its scope (tests/faults/invariant.py). Figures: acknowledged writes lost, rounds that did
not converge (undelivered or stale), faults injected.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from bench.common import stop_on_signals
from tests.fakes.scim_target import ScimTarget
from tests.fakes.webhook_target import WebhookTarget
from tests.faults.client import BridgeClient
from tests.faults.harness import Stack
from tests.faults.invariant import converge

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
ROUND_SECONDS = 60.0
WRITERS = 3
FAULT_EVERY = (10.0, 25.0)
"""Seconds between two faults in a round (uniformly chosen)."""
REDIS_DOWN = (1.0, 5.0)
CONVERGE_SECONDS = 120.0
GROUPS = 4

PRODUCTION_TIMING = {
    "BRIDGE_RETRY_BASE_SECONDS": "1",
    "BRIDGE_RETRY_MAX_ATTEMPTS": "8",
    "BRIDGE_BREAKER_PROBE_SECONDS": "30",
    "BRIDGE_WORKER_THREADS": "8",
    "BRIDGE_JOB_HEARTBEAT_SECONDS": "5",
    "BRIDGE_JOB_LOST_SECONDS": "15",
    "BRIDGE_MAINTENANCE_SECONDS": "5",
    "BRIDGE_WORKER_TTL_SECONDS": "60",
    "BRIDGE_REDIS_TIMEOUT_SECONDS": "5",
    "BRIDGE_TARGET_CONNECT_TIMEOUT": "5",
    "BRIDGE_TARGET_READ_TIMEOUT": "10",
}
"""The soak runs with the defaults a deployment has, not the fault suite's short ones."""


class Workload:
    """Entra's operations from WRITERS threads; remembers every acknowledged create and
    delete, so that a lost write can be told from a deliberate delete."""

    def __init__(self, bridge: BridgeClient, groups: list[str], seed: int) -> None:
        self.bridge = bridge
        self.groups = groups
        self.rng = random.Random(seed)
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.refused = 0
        self.writes = 0
        self.lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        threads = [threading.Thread(target=self._writer, args=(stop,)) for _ in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _writer(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._one()
                with self.lock:
                    self.writes += 1
            except (httpx.HTTPError, AssertionError):
                with self.lock:
                    self.refused += 1  # Redis away: 503, or a connection refused
                time.sleep(0.2)

    def _one(self) -> None:
        with self.lock:
            alive = sorted(self.created - self.deleted)
            pick = self.rng.random()
            uid = self.rng.choice(alive) if alive else None
            gid = self.rng.choice(self.groups)
        if uid is None or pick < 0.35:
            user = self.bridge.create_user()
            with self.lock:
                self.created.add(user["id"])
        elif pick < 0.55:
            self.bridge.set_user(uid, "title", f"t{self.rng.randrange(1000)}")
        elif pick < 0.65:
            self.bridge.set_user(uid, "active", self.rng.choice([True, False]))
        elif pick < 0.9:
            self.bridge.members(gid, self.rng.choice(["add", "remove"]), [uid])
        else:
            self.bridge.delete("User", uid)
            with self.lock:
                self.deleted.add(uid)


def chaos(stack: Stack, stop: threading.Event, rng: random.Random, faults: dict) -> None:
    """Until ``stop``: every few seconds, SIGKILL the workers or kill -9 Redis."""
    while not stop.wait(rng.uniform(*FAULT_EVERY)):
        if rng.random() < 0.5:
            stack.kill_workers()
            stack.start_workers()
            faults["worker_kills"] += 1
        else:
            stack.redis.kill()
            time.sleep(rng.uniform(*REDIS_DOWN))
            stack.redis.start()
            faults["redis_restarts"] += 1


def soak(minutes: float, workdir: Path, seed: int, faults_on: bool = True) -> dict:
    rng = random.Random(seed)
    stack = Stack(workdir, overrides=PRODUCTION_TIMING).start()
    bridge = BridgeClient(stack)
    hook_fake, scim_fake = WebhookTarget("whsec_placeholder").start(), ScimTarget().start()
    faults = {"worker_kills": 0, "redis_restarts": 0}
    rounds: list[dict] = []
    try:
        groups = [bridge.create_group()["id"] for _ in range(GROUPS)]
        # the workload deprovisions far more than the deletion guard's default lets through
        # in an hour (it would hold them for an admin, by design)
        guard = {"max": 1_000_000, "window_seconds": 3600}
        targets = [
            bridge.add_webhook(
                hook_fake, scope={"type": "groups", "groups": groups[:2]}, deletion_guard=guard
            ),
            bridge.add_scim(scim_fake, deprovision="delete", deletion_guard=guard),
        ]
        work = Workload(bridge, groups, seed)
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            stop = threading.Event()
            fault = threading.Thread(
                target=chaos if faults_on else stop.wait,
                args=(stack, stop, rng, faults) if faults_on else (),
            )
            fault.start()
            timer = threading.Timer(min(ROUND_SECONDS, deadline - time.monotonic()), stop.set)
            timer.start()
            work.run(stop)
            fault.join()
            rounds.append(_check(bridge, targets, work))
            print(f"round {len(rounds)}: {rounds[-1]}  faults so far {faults}", flush=True)
    finally:
        bridge.close()
        hook_fake.stop()
        scim_fake.stop()
        stack.stop()
    return {
        "minutes": minutes,
        "rounds": len(rounds),
        "writes": work.writes,
        "writes_refused_during_faults": work.refused,
        "users_created": len(work.created),
        "acknowledged_lost": sum(r["lost"] for r in rounds[-1:]),
        "rounds_not_converged": sum(1 for r in rounds if not r["converged"]),
        **faults,
        "round_results": rounds,
    }


def _check(bridge: BridgeClient, targets: list, work: Workload) -> dict:
    started = time.monotonic()
    try:
        converge(bridge, targets, timeout=CONVERGE_SECONDS)
        converged, detail = True, ""
    except AssertionError as exc:
        converged, detail = False, str(exc)[:2000] + _explain(bridge, targets, str(exc))
    stored = {u["id"] for u in bridge.list("/Users")}
    lost = sorted(work.created - work.deleted - stored)
    return {
        "converged": converged,
        "converged_in_s": round(time.monotonic() - started, 1),
        "lost": len(lost),
        "detail": detail,
    }


def _explain(bridge: BridgeClient, targets: list, detail: str) -> str:
    """For the first resources the invariant found wrong: what each target's delivery
    bookkeeping says of them (state, recent deliveries, parked), to tell a lost delivery
    from a held or failing one."""
    r = bridge.stack.client()
    prefix = bridge.stack.prefix
    ids = []
    for line in detail.splitlines():
        for kind in ("user", "group"):
            if f": {kind} " in line:
                ids.append((kind, line.split(f": {kind} ")[1].split(" ")[0]))
    out = []
    for kind, rid in list(dict.fromkeys(ids))[:3]:
        for handle in targets:
            base = f"{prefix}:target:{handle.id}"
            entries = [orjson.loads(e) for e in r.lrange(f"{base}:log", 0, -1)]
            mine = [f"{e['at'][11:23]} {e['action']} {e['outcome']} {e.get('error') or ''}"
                    for e in reversed(entries) if e["id"] == rid]  # fmt: skip
            out.append(
                f"\n  {handle.name} {kind}:{rid}: state {r.hget(f'{base}:state', f'{kind}:{rid}')}"
                f" held {r.hexists(f'{base}:held', f'{kind}:{rid}')}"
                f" dead {r.hexists(f'{base}:dead', f'{kind}:{rid}')} log {mine[-6:]}"
            )
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--no-faults", action="store_true", help="the workload alone, no kills")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    stop_on_signals()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        result = soak(args.minutes, Path(tmp), args.seed, faults_on=not args.no_faults)
    print(
        f"soak {args.minutes:g} min: {result['writes']} writes, {result['worker_kills']} worker "
        f"kills, {result['redis_restarts']} Redis restarts; acknowledged writes lost "
        f"{result['acknowledged_lost']}, rounds not converged {result['rounds_not_converged']} "
        f"of {result['rounds']}",
        flush=True,
    )
    document = {
        "benchmark": "soak",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **result,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0 if not result["acknowledged_lost"] and not result["rounds_not_converged"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
