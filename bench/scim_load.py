"""SCIM load benchmark: the bridge as production starts it + AOF Redis, against the ceiling.

    python -m bench.scim_load            # 5 s per scenario, 100,000 users for memory
    python -m bench.scim_load --quick    # 2 s per scenario, 10,000 users
    python -m bench.scim_load --web gunicorn   # the bridge under gunicorn instead
    python -m bench.scim_load --sweep    # compare gunicorn settings (sync/gthread, workers)
    python -m bench.scim_load --peers    # beside scimgateway and scim2-server (bench.scim_peers)

See bench/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis

from bench import loadgen, memory, profiling
from bench.common import machine, percentile, run_main, stop_on_signals
from bench.scenarios import CEILING, P99_TARGET_MS, SCENARIOS, TARGETS, Context, Scenario
from bench.served import DESCRIPTION, ServedBridge, ServedCeiling, WebTier
from bench.server import Gunicorn, ServerSettings, cpu_seconds
from bridge.directory.tokens import TokenStore
from bridge.runtime.embedded_redis import EmbeddedRedis
from bridge.scim.resource_types import build_resource_types

RESULTS = Path(__file__).resolve().parent / "results" / "scim_load.json"
PEERS_RESULTS = RESULTS.with_name("scim_load_peers.json")
PROFILES = RESULTS.parent / "profiles"

SWEEP = [
    ServerSettings("sync", 2, 1),
    ServerSettings("sync", 3, 1),
    ServerSettings("sync", 4, 1),
    ServerSettings("gthread", 2, 1),
    ServerSettings("gthread", 2, 2),
    ServerSettings("gthread", 2, 2, reuse_port=False),
    ServerSettings("gthread", 2, 4),
    ServerSettings("gthread", 3, 2),
    ServerSettings("gthread", 4, 1),
    ServerSettings("gthread", 4, 2),
    ServerSettings("gthread", 4, 2, reuse_port=False),
    ServerSettings("gthread", 4, 4),
]


def summarise(stats: loadgen.Stats, window: float) -> dict:
    every = sorted(v for values in stats.latencies.values() for v in values)
    out = {
        "requests": len(every),
        "rps": round(len(every) / window, 1),
        "p50_ms": round(percentile(every, 0.50) * 1000, 2),
        "p99_ms": round(percentile(every, 0.99) * 1000, 2),
        "errors": sum(stats.errors.values()),
        "client_cpu_us_per_request": round(stats.cpu_seconds / max(1, len(every)) * 1e6, 1),
        "by_request": {},
    }
    for label, values in stats.latencies.items():
        ordered = sorted(values)
        out["by_request"][label] = {
            "requests": len(ordered),
            "rps": round(len(ordered) / window, 1),
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        }
    if stats.errors:
        out["error_counts"] = stats.errors
        out["error_samples"] = stats.error_samples
    if stats.capped:
        out["capped_connections"] = stats.capped
    return out


class Bench:
    """The stack under test: AOF Redis, the bridge and the ceiling app.

    ``web="served"`` (the default) starts the bridge as production does
    (``bridge.runtime.serve``: granian, a delivery and a sync worker) and the ceiling under
    the same granian command; ``web="gunicorn"`` serves both with gunicorn ``settings``.
    """

    def __init__(
        self,
        workdir: Path,
        settings: ServerSettings,
        client_procs: int,
        profile_at: set[int] | None = None,
        web: str = "served",
    ) -> None:
        self.workdir = workdir
        self.profile_at = profile_at or set()
        self.settings = settings
        self.web = web
        self.client_procs = client_procs
        self.redis_server = EmbeddedRedis(workdir / "redis", appendonly=True)
        self.bridge: WebTier | None = None
        self.ceiling: WebTier | None = None
        self.client: redis.Redis | None = None
        self.token = ""
        self.context: Context | None = None

    def __enter__(self) -> Bench:
        try:
            self.redis_server.start()
            self.client = redis.Redis.from_url(self.redis_server.url)
            _, self.token = TokenStore(self.client, "bridge").create("bench")
            url = self.redis_server.url
            if self.web == "served":
                self.bridge = ServedBridge(self.workdir, url)
                self.ceiling = ServedCeiling(self.workdir, url)
            else:
                env = {
                    "REDIS_URL": url,
                    "BRIDGE_PUBLIC_URL": "https://scim.bench.example",
                    "BRIDGE_DATA_DIR": str(self.workdir / "var"),
                }
                self.bridge = Gunicorn("app:create_app()", self.settings, env, self.workdir)
                self.ceiling = Gunicorn(
                    "bench.ceiling_app:create_app()", self.settings, env, self.workdir
                )
            types = build_resource_types([], [])
            self.context = Context(
                self.client,
                types["User"],
                types["Group"],
                f"r{int(time.time())}",
                itertools.count(),
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for server in (self.bridge, self.ceiling):
            if server is not None:
                server.stop()
        if self.client is not None:
            self.client.close()
        self.redis_server.stop()

    def run(self, scenario: Scenario, concurrency: int, duration: float) -> dict:
        target = self.ceiling if scenario is CEILING else self.bridge
        assert target is not None and self.context is not None
        per_conn = math.ceil(scenario.requests_per_second_cap * duration / concurrency) + 10
        factory = scenario.prepare(self.context, concurrency, per_conn)
        procs = self.client_procs if concurrency >= 16 else 1
        server_pids = target.pids()
        redis_pids = [self.redis_server.process.pid] if self.redis_server.process else []
        cpu0 = cpu_seconds(server_pids), cpu_seconds(redis_pids)
        spy = None
        profile_pid = target.profile_pid()
        if concurrency in self.profile_at and scenario is not CEILING and profile_pid:
            prefix = PROFILES / f"{scenario.name}-c{concurrency}"
            spy = profiling.start(profile_pid, duration + 1 + 0.05 * concurrency, prefix)
            time.sleep(0.5)  # attached before the window opens
        stats, window = loadgen.run(
            "127.0.0.1",
            target.port,
            self.token,
            factory,
            concurrency,
            duration,
            per_conn,
            procs,
        )
        result = summarise(stats, window)
        if spy is not None:
            profiling.stop(spy)
            result["profiled"] = True
            result["profile"] = profiling.summarise(prefix.with_suffix(".txt"))
        # the servers are idle outside the window: CPU per window second is their load
        result["server_cpu_cores"] = round((cpu_seconds(server_pids) - cpu0[0]) / window, 2)
        result["redis_cpu_cores"] = round((cpu_seconds(redis_pids) - cpu0[1]) / window, 2)
        result["client_cpu_cores"] = round(stats.cpu_seconds / window, 2)
        return result

    def start_ceiling(self) -> None:
        """Serve the ceiling app alone, so that an idle bridge takes no CPU from it."""
        assert self.bridge is not None and self.ceiling is not None
        self.bridge.stop()
        self.ceiling.start()

    def start_bridge(self) -> None:
        assert self.bridge is not None and self.ceiling is not None
        self.ceiling.stop()
        self.bridge.start()

    def warm_up(self, concurrency: int) -> None:
        """Every worker imports, connects to Redis and caches the token before timing."""
        assert self.context is not None
        self.run(SCENARIOS["lookup"], concurrency, 0.5)


def _fmt(value: float, digits: int = 0) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:,.{digits}f}")
    )


def print_table(results: dict, concurrencies: list[int]) -> None:
    ceiling = results["scenarios"].get("ceiling", {})
    header = (
        f"{'scenario':<38} {'conc':>4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'/ceiling':>8} {'err':>4}  {'target @8':>10}"
    )
    print()
    print(header)
    print("-" * len(header))
    for name, by_conc in results["scenarios"].items():
        title = CEILING.title if name == "ceiling" else SCENARIOS[name].title
        for c in concurrencies:
            row = by_conc.get(str(c))
            if row is None:
                continue
            base = ceiling.get(str(c), {}).get("rps")
            ratio = f"{row['rps'] / base:.2f}" if base and name != "ceiling" else ""
            verdict = ""
            if c == 8 and name in TARGETS:
                ok = row["rps"] >= TARGETS[name]
                verdict = f"{TARGETS[name]:>5} {'ok' if ok else 'MISS'}"
            print(
                f"{title if c == concurrencies[0] else '':<38} {c:>4} {_fmt(row['rps']):>8} "
                f"{_fmt(row['p50_ms'], 1):>7} {_fmt(row['p99_ms'], 1):>7} {ratio:>8} "
                f"{row['errors']:>4}  {verdict:>10}"
            )
    print()
    singles = []
    for name, by_conc in results["scenarios"].items():
        row = by_conc.get("8")
        if row and name != "ceiling":
            for label, r in row["by_request"].items():
                if "group" not in label:
                    singles.append((f"{name}: {label}", r["p99_ms"]))
    if singles:
        print(f"p99 of single-user requests at concurrency 8 (target <= {P99_TARGET_MS:.0f} ms):")
        for label, p99 in singles:
            mark = "ok" if p99 <= P99_TARGET_MS else "MISS"
            print(f"  {label:<40} {p99:>7.1f} ms  {mark}")
        print()
    mem = results.get("memory")
    if mem:
        ok = "ok" if mem["bytes_per_user"] <= 2048 else "MISS"
        print(
            f"Redis memory: {mem['bytes_per_user']:,} bytes/user at {mem['users']:,} users "
            f"(target <= 2,048: {ok}); dataset {mem['dataset_bytes_per_user']:,} bytes/user"
        )
        for part, value in mem["breakdown_bytes_per_user"].items():
            print(f"  {part:<34} {value:>6,} bytes/user")
        print()


def run_benchmark(args: argparse.Namespace) -> dict:
    settings = _settings(args)
    concurrencies = args.concurrency
    names = args.scenarios
    results: dict = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "server": _server_description(args, settings),
        "duration_seconds": args.duration,
        "concurrency": concurrencies,
        "targets_at_concurrency_8": {**TARGETS, "p99_ms_single_user": P99_TARGET_MS},
        "scenarios": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="scim-bench-"))
    try:
        profile_at = set(args.profile_concurrency) if args.profile else set()
        with Bench(workdir, settings, args.client_procs, profile_at, args.web) as bench:
            if not args.no_ceiling:
                bench.start_ceiling()
                results["scenarios"]["ceiling"] = {}
                for c in concurrencies:
                    row = bench.run(CEILING, c, args.duration)
                    results["scenarios"]["ceiling"][str(c)] = row
                    _progress("ceiling", c, row)
            bench.start_bridge()
            bench.warm_up(max(concurrencies))
            for name in names:
                results["scenarios"][name] = {}
                for c in concurrencies:
                    row = bench.run(SCENARIOS[name], c, args.duration)
                    results["scenarios"][name][str(c)] = row
                    _progress(name, c, row)
        if args.memory_users:
            print(f"loading {args.memory_users:,} users for the memory figure...", flush=True)
            results["memory"] = memory.measure(workdir / "memory", args.memory_users)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _server_description(args: argparse.Namespace, settings: ServerSettings) -> dict:
    if args.web == "served":
        return {"start": DESCRIPTION}
    return {"start": "gunicorn", **settings.as_dict()}


def _settings(args: argparse.Namespace) -> ServerSettings:
    return ServerSettings(
        args.worker_class, args.workers, args.threads, args.keepalive, not args.no_reuse_port
    )


def run_sweep(args: argparse.Namespace) -> dict:
    """Short create/lookup/patch runs at one concurrency for each candidate setting.

    Each setting runs ``--sweep-trials`` times: with keep-alive, how connections happen
    to be spread over workers changes from run to run, so the minimum matters.
    """
    rows = []
    names = ["create", "lookup", "patch_user"]
    c = args.sweep_concurrency
    for settings in SWEEP:
        workdir = Path(tempfile.mkdtemp(prefix="scim-sweep-"))
        try:
            with Bench(workdir, settings, args.client_procs, web="gunicorn") as bench:
                bench.start_bridge()
                bench.warm_up(c)
                row: dict = {"server": settings.label(), **settings.as_dict()}
                for name in names:
                    runs = [
                        bench.run(SCENARIOS[name], c, args.duration)["rps"]
                        for _ in range(args.sweep_trials)
                    ]
                    row[name] = {"min": min(runs), "max": max(runs), "runs": runs}
                rows.append(row)
                print(
                    f"{row['server']:<36} "
                    + "  ".join(
                        f"{n} {row[n]['min']:>6,.0f}-{row[n]['max']:<6,.0f}" for n in names
                    ),
                    flush=True,
                )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return {"concurrency": c, "duration_seconds": args.duration, "rows": rows}


def _print_profile(name: str, c: int, profile: dict) -> None:
    print(f"    py-spy {name} c={c}: {profile['samples']} samples in request handling")
    print("    bridge code, inclusive % of request time:")
    for fn, pct in profile["bridge_inclusive_pct"][:15]:
        print(f"      {pct:>5.1f}%  {fn}")
    print("    self time (leaf frames):")
    for fn, pct in profile["self_pct"][:12]:
        print(f"      {pct:>5.1f}%  {fn}")


def _progress(name: str, c: int, row: dict) -> None:
    print(
        f"  {name:<14} c={c:<3} {row['rps']:>8,.0f} req/s  p50 {row['p50_ms']:>6.1f} ms  "
        f"p99 {row['p99_ms']:>6.1f} ms  errors {row['errors']}  "
        f"cpu server {row['server_cpu_cores']:.2f} redis {row['redis_cpu_cores']:.2f} "
        f"client {row['client_cpu_cores']:.2f}",
        flush=True,
    )
    for sample in row.get("error_samples", [])[:2]:
        print(f"      ! {sample[:300]}", flush=True)
    if "profile" in row:
        _print_profile(name, c, row["profile"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.scim_load", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--peers",
        action="store_true",
        help="the bridge beside scimgateway and scim2-server, one cell each in turn "
        "(results/scim_load_peers.json; see bench/README.md)",
    )
    p.add_argument(
        "--servers",
        type=lambda s: s.split(","),
        default=["bridge", "scimgateway", "scim2-server"],
        help="with --peers: comma-separated subset of bridge,scimgateway,scim2-server",
    )
    p.add_argument(
        "--preload",
        type=int,
        default=0,
        help="with --peers: users created in every server before the first cell (default 0)",
    )
    p.add_argument("--quick", action="store_true", help="2 s per scenario, 10,000 memory users")
    p.add_argument("--duration", type=float, help="seconds per scenario (default 5, quick 2)")
    p.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated connection counts (default 1,8,32; with --peers 8)",
    )
    p.add_argument(
        "--scenarios",
        type=lambda s: s.split(","),
        default=list(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    p.add_argument(
        "--web",
        default="served",
        choices=["served", "gunicorn"],
        help="served (default): the bridge as production starts it (bridge.runtime.serve); "
        "gunicorn: app:create_app() under gunicorn with the options below (--sweep uses it)",
    )
    p.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    p.add_argument("--threads", type=int, default=2, help="threads per gthread worker (2)")
    p.add_argument("--keepalive", type=int, default=5, help="gunicorn --keep-alive seconds")
    p.add_argument(
        "--no-reuse-port",
        action="store_true",
        help="one shared listening socket instead of one SO_REUSEPORT socket per worker",
    )
    p.add_argument(
        "--client-procs",
        type=int,
        default=2,
        help="load generator processes at concurrency >= 16 (default 2; 1 below)",
    )
    p.add_argument("--memory-users", type=int, help="users for the memory figure (0: skip)")
    p.add_argument("--no-ceiling", action="store_true", help="skip the ceiling app")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the workers with py-spy (figures are then lower); see bench/results/profiles",
    )
    p.add_argument(
        "--profile-concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[8],
        help="concurrencies to profile (default 8)",
    )
    p.add_argument("--sweep", action="store_true", help="compare gunicorn settings and exit")
    p.add_argument("--sweep-concurrency", type=int, default=8)
    p.add_argument("--sweep-trials", type=int, default=2)
    p.add_argument("--output", type=Path, help="JSON results file")
    args = p.parse_args(argv)
    if args.concurrency is None:
        args.concurrency = [8] if args.peers else [1, 8, 32]
    if args.output is None:
        args.output = PEERS_RESULTS if args.peers else RESULTS
    if args.duration is None:
        args.duration = 2.0 if args.quick else 5.0
    if args.memory_users is None:
        args.memory_users = 10_000 if args.quick else 100_000
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    servers = ["bridge", "scimgateway", "scim2-server"]
    if [s for s in args.servers if s not in servers]:
        p.error(f"--servers: choose from {servers}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.peers:
        from bench.peers_report import print_report
        from bench.scim_peers import run_peers

        return run_main(args, run_peers, print_report)
    stop_on_signals()
    try:
        if args.sweep:
            sweep = run_sweep(args)
            out = args.output.with_name("gunicorn_sweep.json")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(orjson.dumps(sweep, option=orjson.OPT_INDENT_2))
            print(f"\nwritten to {out}")
            return 0
        settings = _settings(args)
        label = DESCRIPTION if args.web == "served" else f"gunicorn {settings.label()}"
        print(f"server: {label}; {args.duration:g} s per scenario", flush=True)
        results = run_benchmark(args)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    print_table(results, args.concurrency)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
