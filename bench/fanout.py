"""Fan-out benchmark: SCIM write → change stream → dispatcher → RQ worker → two targets.

    python -m bench.fanout             # 20 s at 100 writes/s, then 5,000 preloaded users
    python -m bench.fanout --quick     # 8 s at 100 writes/s, then 2,000 preloaded users
    python -m bench.fanout --profile   # then both phases again, py-spy on the worker

See bench/README.md ("Fan-out benchmark") for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import redis

from bench import entra, fanout_profile
from bench.common import machine, percentile, run_main
from bench.fanout_drive import (
    SINK_TARGET,
    Child,
    Receipts,
    paced_creates,
    python_module,
    session_pids,
    wait_for,
    wait_listening,
)
from bench.profiling import py_spy
from bench.server import Gunicorn, ServerSettings, cpu_seconds
from bridge.delivery.deliveries import Deliveries
from bridge.delivery.jobs import QUEUE, QUEUES, queues_for
from bridge.directory.tokens import TokenStore
from bridge.runtime.embedded_redis import EmbeddedRedis, free_port
from bridge.scim.resource_types import build_resource_types
from bridge.targets.secrets import SecretBox
from bridge.targets.signing import new_secret
from bridge.targets.store import TargetStore

RESULTS = Path(__file__).resolve().parent / "results" / "fanout.json"
PROFILES = RESULTS.parent / "profiles"

TARGET_P50_MS = 20.0
TARGET_P99_MS = 300.0
TARGET_DELIVERIES_PER_S = 600.0

PREFIX = "bridge"
WEBHOOK, SCIM = "webhook", "scim"
KIND = {WEBHOOK: "user.created", SCIM: "user.create"}
"""The receipt that marks a new user as delivered, per sink."""

SINK_START_TIMEOUT = 10.0
DELIVERY_GRACE = 30.0
"""Seconds, after the last write, that deliveries still have to arrive in the latency run."""


def ms_summary(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "min_ms": round(ordered[0] * 1000, 2),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p90_ms": round(percentile(ordered, 0.90) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


class Stack:
    """AOF Redis, the bridge under gunicorn, two recording sinks and (when asked) one worker."""

    def __init__(self, workdir: Path, worker_args: list[str] | None = None) -> None:
        self.workdir = workdir
        self.worker_args = worker_args
        self.redis_server = EmbeddedRedis(workdir / "redis", appendonly=True)
        self.client: redis.Redis | None = None
        self.bridge: Gunicorn | None = None
        self.sinks: dict[str, Child] = {}
        self.sink_ports: dict[str, int] = {}
        self.receipts: dict[str, Receipts] = {}
        self.worker: Child | None = None
        self.workers_started = 0
        self.token = ""
        self.env: dict[str, str] = {}
        self.target_ids: dict[str, str] = {}
        self.user_type = build_resource_types([], [])["User"]

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        self.redis_server.start()
        self.client = redis.Redis.from_url(self.redis_server.url)
        _, self.token = TokenStore(self.client, PREFIX).create("bench")
        key = SecretBox.generate_key()
        self.env = {
            "REDIS_URL": self.redis_server.url,
            "BRIDGE_SECRET_KEYS": key,
            "BRIDGE_PUBLIC_URL": "https://scim.bench.example",
            "BRIDGE_DATA_DIR": str(self.workdir / "var"),
        }
        for mode in (WEBHOOK, SCIM):
            port = free_port()
            out = self.workdir / f"sink-{mode}.tsv"
            sink = Child(
                f"sink-{mode}",
                python_module("bench.sink", "--mode", mode, "--port", str(port), "--out", str(out)),
                {},
                self.workdir,
            )
            self.sinks[mode] = sink
            self.sink_ports[mode] = port
            self.receipts[mode] = Receipts(out)
            sink.start()
        for mode, sink in self.sinks.items():
            wait_listening(sink, self.sink_ports[mode])
        self.bridge = Gunicorn("app:create_app()", ServerSettings(), self.env, self.workdir)
        self.bridge.start()
        store = TargetStore(self.client, PREFIX, SecretBox([key]), build_resource_types([], []))
        hook = store.create(
            {
                **SINK_TARGET,
                "name": "sink-webhook",
                "kind": "webhook",
                "url": f"http://127.0.0.1:{self.sink_ports[WEBHOOK]}/events",
                "signing_secret": new_secret(),
            }
        )
        scim = store.create(
            {
                **SINK_TARGET,
                "name": "sink-scim",
                "kind": "scim",
                "url": f"http://127.0.0.1:{self.sink_ports[SCIM]}/scim/v2",
            }
        )
        self.target_ids = {WEBHOOK: hook["id"], SCIM: scim["id"]}

    def __exit__(self, *exc) -> None:
        self.stop_worker()
        if self.bridge is not None:
            self.bridge.stop()
        for sink in self.sinks.values():
            sink.stop()
        if self.client is not None:
            self.client.close()
        self.redis_server.stop()

    # --- worker ---------------------------------------------------------------------------
    def start_worker(self) -> Child:
        self.stop_worker()
        self.workers_started += 1
        env = {
            "REDIS_URL": self.env["REDIS_URL"],
            "BRIDGE_SECRET_KEYS": self.env["BRIDGE_SECRET_KEYS"],
        }
        self.worker = Child(
            f"worker-{self.workers_started}",
            python_module(*(self.worker_args or ["workers.run"])),
            env,
            self.workdir,
        )
        self.worker.start()
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    # --- measurement helpers --------------------------------------------------------------
    def cpu_by_pid(self) -> dict[str, dict[int, float]]:
        groups: dict[str, list[int]] = {"redis": [], "gunicorn": [], "worker": [], "sinks": []}
        if self.redis_server.process is not None:
            groups["redis"] = [self.redis_server.process.pid]
        if self.bridge is not None and self.bridge.process is not None:
            groups["gunicorn"] = [self.bridge.process.pid, *self.bridge.worker_pids()]
        if self.worker is not None and self.worker.alive():
            groups["worker"] = session_pids(self.worker.pid)
        groups["sinks"] = [s.pid for s in self.sinks.values() if s.alive()]
        return {name: {pid: cpu_seconds([pid]) for pid in pids} for name, pids in groups.items()}

    def wait_delivered(self, names: set[str], timeout: float, on_poll=None) -> bool:
        pairs = [(self.receipts[m], KIND[m]) for m in (WEBHOOK, SCIM)]
        return wait_for(pairs, names, timeout, on_poll)

    def check_alive(self) -> None:
        for name, child in [*self.sinks.items(), ("worker", self.worker)]:
            if child is not None and not child.alive():
                raise RuntimeError(f"{name} exited early:\n{child.log_tail()}")

    def job_counters(self) -> dict[str, float]:
        """Jobs run and seconds spent in them, summed over the registered RQ workers."""
        assert self.client is not None
        jobs = working = 0.0
        for key in self.client.smembers("rq:workers"):
            raw = self.client.hmget(key, ["successful_job_count", "total_working_time"])
            jobs += int(raw[0] or 0)
            working += float(raw[1] or 0)
        return {"jobs": jobs, "working_s": working}

    def delivery_stats(self) -> dict:
        assert self.client is not None
        deliveries = Deliveries(self.client, PREFIX)
        out = {mode: deliveries.stats(tid) for mode, tid in self.target_ids.items()}
        queues = queues_for(self.client)
        out["failed_jobs"] = sum(queues[name].failed_job_registry.count for name in QUEUES)
        return out


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    return {
        name: round(sum(t - before.get(name, {}).get(pid, 0.0) for pid, t in pids.items()), 2)
        for name, pids in after.items()
    }


class QueueSampler(threading.Thread):
    """Samples the delivery queue's length (jobs) and the change stream's, every PERIOD s."""

    PERIOD = 0.25

    def __init__(self, url: str, limit_s: float) -> None:
        super().__init__(name="queue-sampler", daemon=True)
        self.client = redis.Redis.from_url(url)
        self.limit_s = limit_s
        self.stop = threading.Event()
        self.samples: list[tuple[float, int, int]] = []

    def run(self) -> None:
        queue = queues_for(self.client)[QUEUE]
        started = time.monotonic()
        try:
            while not self.stop.is_set() and time.monotonic() - started < self.limit_s:
                self.samples.append(
                    (
                        round(time.monotonic() - started, 2),
                        queue.count,
                        int(self.client.xlen(f"{PREFIX}:changes")),
                    )
                )
                self.stop.wait(self.PERIOD)
        finally:
            self.client.close()

    def finish(self) -> dict:
        self.stop.set()
        self.join(5)
        depths = [q for _, q, _ in self.samples]
        return {
            "max_queued_jobs": max(depths, default=0),
            "queued_jobs_by_second": [
                next(q for t, q, _ in self.samples if t >= second)
                for second in range(int(self.samples[-1][0]) + 1 if self.samples else 0)
            ],
            "max_stream_length": max((x for _, _, x in self.samples), default=0),
        }


# --- phase 1: end-to-end latency at a fixed write rate ----------------------------------


def measure_latency(
    stack: Stack, run: str, rate: float, duration: float, profile: bool = False
) -> dict:
    worker = stack.start_worker()
    # warm-up: the worker imports, connects, reads the targets; connection pools fill
    warm = [f"{run}-warm{i}" for i in range(20)]
    result = paced_creates(stack.bridge.port, stack.token, warm, 50.0)
    if result.errors:
        raise RuntimeError(f"warm-up writes failed: {result.errors[:3]}")
    if not stack.wait_delivered(set(result.user_names), 60.0, stack.check_alive):
        raise RuntimeError(f"warm-up deliveries did not arrive:\n{worker.log_tail()}")
    time.sleep(1.0)

    tags = [f"{run}-lat{i}" for i in range(round(rate * duration))]
    spy = None
    profile_out = PROFILES / "fanout-worker-latency.txt"
    if profile:
        spy = fanout_profile.start(worker.pid, duration, profile_out)
        time.sleep(0.5)
    cpu0 = stack.cpu_by_pid()
    jobs0 = stack.job_counters()
    sampler = QueueSampler(stack.redis_server.url, duration + DELIVERY_GRACE + 15)
    sampler.start()
    try:
        result = paced_creates(stack.bridge.port, stack.token, tags, rate)
    finally:
        if spy is not None:
            fanout_profile.stop(spy)
    window = result.finished - result.started
    cpu1 = stack.cpu_by_pid()
    ok = [i for i, s in enumerate(result.status) if s == 201]
    names = {result.user_names[i] for i in ok}
    stack.wait_delivered(names, DELIVERY_GRACE, stack.check_alive)
    queue = sampler.finish()
    jobs1 = stack.job_counters()
    cpu = cpu_delta(cpu0, cpu1)
    jobs = jobs1["jobs"] - jobs0["jobs"]

    out: dict = {
        "rate_per_s": rate,
        "duration_s": duration,
        "writes": len(tags),
        "writes_ok": len(ok),
        "write_errors": result.errors[:10],
        "achieved_rate_per_s": round(len(ok) / window, 1) if window > 0 else None,
        "scim_response": ms_summary([result.latency[i] for i in ok]),
        "send_lateness": ms_summary([x for x in result.lateness if not math.isnan(x)]),
        "cpu_cores_during_writes": {k: round(v / window, 2) for k, v in cpu.items()},
        "delivery_jobs": int(jobs),
        "deliveries_per_job": round(2 * len(ok) / jobs, 2) if jobs else None,
        "job_ms_in_perform": round((jobs1["working_s"] - jobs0["working_s"]) / jobs * 1000, 2)
        if jobs
        else None,
        "queue": queue,
        "targets": {},
    }
    for mode in (WEBHOOK, SCIM):
        times = stack.receipts[mode].times(KIND[mode])
        lag = [
            times[result.user_names[i]] - result.response_at[i]
            for i in ok
            if result.user_names[i] in times
        ]
        in_window = sum(1 for i in ok if times.get(result.user_names[i], 1e18) <= result.finished)
        by_second: dict[int, list[float]] = {}
        for i in ok:
            name = result.user_names[i]
            if name in times:
                second = int(result.response_at[i] - result.started)
                by_second.setdefault(second, []).append(times[name] - result.response_at[i])
        out["targets"][mode] = {
            **ms_summary(lag),
            "missing": len(ok) - len(lag),
            "duplicates": stack.receipts[mode].duplicates.get(KIND[mode], 0),
            "delivered_per_s_during_writes": round(in_window / window, 1),
            "p50_ms_by_second": [
                round(percentile(sorted(v), 0.5) * 1000, 1) for _, v in sorted(by_second.items())
            ],
        }
    if profile and profile_out.exists():
        out["profiled"] = True
        out["profile"] = fanout_profile.summarise(profile_out)
    return out


# --- phase 2: sustained deliveries per worker process -----------------------------------


def measure_throughput(stack: Stack, run: str, users: int, profile: bool = False) -> dict:
    assert stack.client is not None
    stack.stop_worker()
    tags = [f"{run}-bulk{i}" for i in range(users)]
    t0 = time.monotonic()
    entra.seed_users(stack.client, stack.user_type, tags, PREFIX)
    seed_s = time.monotonic() - t0
    backlog = int(stack.client.xlen(f"{PREFIX}:changes"))
    names = {entra.user_name(t) for t in tags}

    cpu0 = stack.cpu_by_pid()
    spawned = time.time()
    worker = stack.start_worker()
    state: dict = {"first_seen": None, "spy": None}
    profile_out = PROFILES / "fanout-worker-throughput.txt"

    def on_poll() -> None:
        stack.check_alive()
        if state["first_seen"] is None and any(
            stack.receipts[m].received(KIND[m], names) for m in (WEBHOOK, SCIM)
        ):
            state["first_seen"] = time.time()
            if profile:
                # attach once the job loop is running: expected remainder plus a margin
                expected = 2 * users / TARGET_DELIVERIES_PER_S
                state["spy"] = fanout_profile.start(worker.pid, expected * 2 + 5, profile_out)

    limit = max(60.0, 2 * users / 25)
    try:
        complete = stack.wait_delivered(names, limit, on_poll)
    finally:
        if state["spy"] is not None:
            fanout_profile.stop(state["spy"])
    cpu1 = stack.cpu_by_pid()
    cpu = cpu_delta(cpu0, cpu1)
    jobs = stack.job_counters()

    receipts = []
    missing = {}
    for mode in (WEBHOOK, SCIM):
        times = stack.receipts[mode].times(KIND[mode])
        got = [times[n] for n in names if n in times]
        receipts += got
        missing[mode] = users - len(got)
    receipts.sort()
    deliveries = len(receipts)
    last = receipts[-1] if receipts else math.nan
    first = receipts[0] if receipts else math.nan
    from_spawn = last - spawned
    steady = last - first
    p10, p90 = percentile(receipts, 0.10), percentile(receipts, 0.90)
    out = {
        "users": users,
        "preload_seconds": round(seed_s, 2),
        "stream_backlog": backlog,
        "deliveries": deliveries,
        "complete": complete,
        "missing": missing,
        "duplicates": {m: stack.receipts[m].duplicates.get(KIND[m], 0) for m in (WEBHOOK, SCIM)},
        "worker_start_to_first_receipt_s": round(first - spawned, 2),
        "wall_from_worker_start_s": round(from_spawn, 2),
        "wall_first_to_last_receipt_s": round(steady, 2),
        "deliveries_per_s_from_worker_start": round(deliveries / from_spawn, 1),
        "deliveries_per_s_first_to_last": round(deliveries / steady, 1) if steady > 0 else None,
        "deliveries_per_s_middle_80pct": round(0.8 * deliveries / (p90 - p10), 1)
        if p90 > p10
        else None,
        "http_requests_to_targets": deliveries + (users - missing[SCIM]),  # SCIM: GET + POST
        "cpu_seconds": cpu,
        "worker_cpu_ms_per_delivery": round(cpu["worker"] / max(1, deliveries) * 1000, 3),
        "worker_cpu_cores": round(cpu["worker"] / from_spawn, 2),
        "delivery_jobs": int(jobs["jobs"]),
        "job_ms_in_perform": round(jobs["working_s"] / jobs["jobs"] * 1000, 2)
        if jobs["jobs"]
        else None,
        "profiled": profile,
    }
    if profile and profile_out.exists():
        out["profile"] = fanout_profile.summarise(profile_out)
    return out


# --- reporting --------------------------------------------------------------------------


def _ok(good: bool) -> str:
    return "ok" if good else "MISS"


def print_latency(lat: dict, title: str = "") -> None:
    print()
    print(
        f"End-to-end latency{title}: {lat['writes_ok']:,}/{lat['writes']:,} SCIM creates at "
        f"{lat['rate_per_s']:g}/s for {lat['duration_s']:g} s (achieved "
        f"{lat['achieved_rate_per_s']}/s; SCIM response p50 {lat['scim_response']['p50_ms']} ms, "
        f"p99 {lat['scim_response']['p99_ms']} ms)"
    )
    header = (
        f"{'target':<22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'missing':>8} "
        f"{'dups':>5}  {f'p50<={TARGET_P50_MS:.0f}':>8} {f'p99<={TARGET_P99_MS:.0f}':>9}"
    )
    print(header)
    print("-" * len(header))
    titles = {WEBHOOK: "webhook (signed)", SCIM: "outbound SCIM"}
    for mode, row in lat["targets"].items():
        if not row.get("n"):
            print(f"{titles[mode]:<22} {'-':>8} {'-':>8} {'-':>8} {row['missing']:>8}")
            continue
        print(
            f"{titles[mode]:<22} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['max_ms']:>8.1f} "
            f"{row['missing']:>8} {row['duplicates']:>5}  "
            f"{_ok(row['p50_ms'] <= TARGET_P50_MS):>8} {_ok(row['p99_ms'] <= TARGET_P99_MS):>9}"
        )
    for mode, row in lat["targets"].items():
        per_s = ", ".join(f"{v:.0f}" for v in row.get("p50_ms_by_second", []))
        print(f"  {mode} p50 ms per second of the run: {per_s}")
    cores = lat["cpu_cores_during_writes"]
    print("CPU cores during the writes: " + ", ".join(f"{k} {v:.2f}" for k, v in cores.items()))
    rates = ", ".join(
        f"{m} {row['delivered_per_s_during_writes']}/s" for m, row in lat["targets"].items()
    )
    print(
        f"Delivered while writing: {rates}; {lat['delivery_jobs']:,} jobs, "
        f"{lat['deliveries_per_job']} deliveries/job, {lat['job_ms_in_perform']} ms/job in "
        f"perform; queued jobs max {lat['queue']['max_queued_jobs']}, by second: "
        + ", ".join(str(q) for q in lat["queue"]["queued_jobs_by_second"][:40])
    )
    if lat.get("profile"):
        print_profile(lat["profile"])


def print_throughput(thr: dict, title: str = "") -> None:
    print()
    rate = thr["deliveries_per_s_from_worker_start"]
    print(
        f"Sustained deliveries{title}: {thr['users']:,} preloaded users x 2 targets, "
        "one worker process"
    )
    print(
        f"  deliveries           {thr['deliveries']:,} (missing: "
        + ", ".join(f"{k} {v}" for k, v in thr["missing"].items())
        + ")"
    )
    print(
        f"  from worker start    {rate:>8,.1f} /s  over {thr['wall_from_worker_start_s']} s  "
        f"target >= {TARGET_DELIVERIES_PER_S:.0f}: {_ok(rate >= TARGET_DELIVERIES_PER_S)}"
    )
    print(
        f"  first→last receipt   {thr['deliveries_per_s_first_to_last']:>8,.1f} /s  "
        f"(worker start to first receipt {thr['worker_start_to_first_receipt_s']} s)"
    )
    print(f"  middle 80 %          {thr['deliveries_per_s_middle_80pct']:>8,.1f} /s")
    print(
        f"  delivery jobs        {thr['delivery_jobs']:,} ({thr['job_ms_in_perform']} ms each "
        "in perform)"
    )
    cpu = thr["cpu_seconds"]
    print(
        f"  worker CPU           {cpu['worker']:.1f} s ({thr['worker_cpu_cores']:.2f} core, "
        f"{thr['worker_cpu_ms_per_delivery']:.2f} ms/delivery); redis {cpu['redis']:.1f} s, "
        f"sinks {cpu['sinks']:.1f} s"
    )
    if thr.get("profile"):
        print_profile(thr["profile"])


def print_profile(prof: dict) -> None:
    print(f"  py-spy (wall clock, --idle): samples by thread {prof['samples_by_thread']}")
    print("  job loop, inclusive % (bridge/workers code):")
    for fn, pct in prof["bridge_inclusive_pct"][:20]:
        print(f"    {pct:>5.1f}%  {fn}")
    print("  job loop, self %:")
    for fn, pct in prof["self_pct"][:15]:
        print(f"    {pct:>5.1f}%  {fn}")


def print_report(results: dict) -> None:
    print_latency(results["latency"])
    print_throughput(results["throughput"])
    if "latency_profiled" in results:
        print_latency(results["latency_profiled"], " (worker under py-spy)")
    if "throughput_profiled" in results:
        print_throughput(results["throughput_profiled"], " (worker under py-spy)")
    print()


def run_benchmark(args: argparse.Namespace) -> dict:
    results: dict = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "server": ServerSettings().as_dict(),
        "targets": {
            "p50_ms": TARGET_P50_MS,
            "p99_ms": TARGET_P99_MS,
            "deliveries_per_s_per_worker_process": TARGET_DELIVERIES_PER_S,
        },
    }
    if args.profile:
        py_spy()  # before the unprofiled phases, not after them
    workdir = Path(tempfile.mkdtemp(prefix="fanout-bench-"))
    run = f"f{int(time.time())}"
    try:
        with Stack(workdir) as stack:
            print(
                f"latency: {args.rate:g} SCIM creates/s for {args.duration:g} s, "
                "one worker process...",
                flush=True,
            )
            results["latency"] = measure_latency(stack, run, args.rate, args.duration)
            print(f"throughput: {args.users:,} preloaded users, one worker process...", flush=True)
            results["throughput"] = measure_throughput(stack, run, args.users)
            if args.profile:
                print("both again, the worker under py-spy...", flush=True)
                results["latency_profiled"] = measure_latency(
                    stack, run + "p", args.rate, args.duration, True
                )
                results["throughput_profiled"] = measure_throughput(
                    stack, run + "p", args.users, True
                )
            results["delivery_stats"] = stack.delivery_stats()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="8 s of writes, 2,000 preloaded users")
    p.add_argument("--rate", type=float, default=100.0, help="SCIM creates per second (100)")
    p.add_argument("--duration", type=float, help="seconds of paced writes (20; quick 8)")
    p.add_argument("--users", type=int, help="preloaded users for throughput (5,000; quick 2,000)")
    p.add_argument(
        "--profile", action="store_true", help="repeat both phases with py-spy on the worker"
    )
    p.add_argument("--output", type=Path, help="JSON results file (default results/fanout.json)")
    args = p.parse_args(argv)
    if args.output is None:
        args.output = RESULTS
    if args.duration is None:
        args.duration = 8.0 if args.quick else 20.0
    if args.users is None:
        args.users = 2000 if args.quick else 5000
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main(parse_args(argv), run_benchmark, print_report)


if __name__ == "__main__":
    sys.exit(main())
