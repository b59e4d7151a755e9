"""Graph resync benchmark: a full Graph → directory resync of a large tenant, then an
incremental run after 1,000 changes, each in a worker process of its own.

    python -m bench.graph_resync            # 100,000 users, 2,000 groups
    python -m bench.graph_resync --quick    # 10,000 users, 200 groups
    python -m bench.graph_resync --profile  # then both runs again under py-spy

See bench/README.md ("Graph resync benchmark") for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import http.client
import secrets
import shutil
import ssl
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import redis

from bench import graph_profile
from bench.common import machine, run_main
from bench.fanout_drive import Child, python_module, session_pids
from bench.server import cpu_seconds
from bridge.directory.records import Directory
from bridge.graph.links import Links
from bridge.graph.runs import Runs
from bridge.graph.translate import ENTERPRISE
from bridge.runtime.embedded_redis import EmbeddedRedis
from tests.fakes.graph_tls import make_server_tls

RESULTS = Path(__file__).resolve().parent / "results" / "graph_resync.json"
PROFILES = RESULTS.parent / "profiles"

TARGET_FULL_S = 120.0
TARGET_FULL_RSS_MB = 400.0
TARGET_INCREMENTAL_S = 5.0

PREFIX = "bridge"
SCOPE = "default"
CHANGES = 1000
SAMPLE_USERS = 500
SAMPLE_GROUPS = 50
FAKE_START_TIMEOUT = 900.0
"""Seconds the fake may take to build its tenant and listen (100k users: ~10-20 s)."""
SAMPLE_PERIOD = 0.25
"""Seconds between samples of the worker's RSS and the run's phase."""
CONTROL_TIMEOUT = 300.0


class Stack:
    """AOF Redis and the fake Graph (its own process, TLS with a throwaway CA)."""

    def __init__(
        self, workdir: Path, users: int, groups: int, seed: int, server: str = "werkzeug"
    ) -> None:
        self.workdir = workdir
        self.server = server
        self.users = users
        self.groups = groups
        self.seed = seed
        self.redis_server = EmbeddedRedis(workdir / "redis", appendonly=True)
        self.client: redis.Redis | None = None
        self.fake: Child | None = None
        self.ready: dict = {}
        self.control_token = secrets.token_urlsafe(16)
        self._ssl: ssl.SSLContext | None = None

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
        tls = make_server_tls(_mkdir(self.workdir / "tls"))
        ready_path = self.workdir / "fake-ready.json"
        self.fake = Child(
            "fake-graph",
            python_module(
                "bench.graph_fake",
                *("--users", str(self.users), "--groups", str(self.groups)),
                *("--seed", str(self.seed), "--tls-dir", str(tls.ca_path.parent)),
                *("--ready", str(ready_path), "--server", self.server),
            ),
            {"BENCH_CONTROL_TOKEN": self.control_token},
            self.workdir,
        )
        self.fake.start()
        deadline = time.monotonic() + FAKE_START_TIMEOUT
        while not ready_path.exists():
            if not self.fake.alive():
                raise RuntimeError(f"the fake Graph exited:\n{self.fake.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError("the fake Graph did not start in time")
            time.sleep(0.2)
        self.ready = orjson.loads(ready_path.read_bytes())
        self._ssl = ssl.create_default_context(cafile=self.ready["ca_path"])

    def __exit__(self, *exc) -> None:
        if self.fake is not None:
            self.fake.stop()
        if self.client is not None:
            self.client.close()
        self.redis_server.stop()

    def control(self, path: str, body: dict | None = None) -> dict:
        """A ``/_bench/*`` call on the fake Graph."""
        port = int(self.ready["url"].rsplit(":", 1)[1])
        conn = http.client.HTTPSConnection(
            "127.0.0.1", port, context=self._ssl, timeout=CONTROL_TIMEOUT
        )
        try:
            conn.request(
                "POST",
                path,
                body=orjson.dumps(body or {}),
                headers={"X-Bench-Control": self.control_token},
            )
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"control {path}: {response.status} {data[:200]!r}")
        return orjson.loads(data)

    def worker_env(self) -> dict[str, str]:
        r = self.ready
        return {
            "REDIS_URL": self.redis_server.url,
            "BRIDGE_KEY_PREFIX": PREFIX,
            "BRIDGE_GRAPH_TENANT_ID": r["tenant_id"],
            "BRIDGE_GRAPH_CLIENT_ID": r["client_id"],
            "BRIDGE_GRAPH_CLIENT_SECRET": r["client_secret"],
            "BRIDGE_GRAPH_AUTHORITY_HOST": r["url"],
            "BRIDGE_GRAPH_BASE_URL": r["graph_url"],
            "BRIDGE_GRAPH_CA_BUNDLE": r["ca_path"],
            "BRIDGE_GRAPH_PAGE_SIZE": "999",
            "BRIDGE_GRAPH_SERVICE_PRINCIPAL_ID": r["service_principal_id"],
        }

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {"redis": [], "fake_graph": []}
        if self.redis_server.process is not None:
            out["redis"] = [self.redis_server.process.pid]
        if self.fake is not None and self.fake.alive():
            out["fake_graph"] = session_pids(self.fake.pid)  # gunicorn: master and worker
        return out


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# --- one worker run ---------------------------------------------------------------------


def run_worker(stack: Stack, mode: str, timeout: float, tag: str, profile: bool = False) -> dict:
    """Start ``bench.graph_worker`` and follow it: RSS, run phase, CPU of the other processes."""
    assert stack.client is not None
    out_path = stack.workdir / f"worker-{tag}.json"
    args = python_module("bench.graph_worker", "--mode", mode, "--out", str(out_path))
    profile_out = PROFILES / f"graph-resync-{tag}.txt"
    if profile:
        args = graph_profile.command(profile_out, [*args, "--no-parent-watch"])
    stack.control("/_bench/requests")  # drop the request log so far
    runs = Runs(stack.client, PREFIX)
    others0 = {name: cpu_seconds(pids) for name, pids in stack.pids().items()}
    child = Child(f"worker-{tag}", args, stack.worker_env(), stack.workdir)
    started = time.monotonic()
    child.start()
    samples: list[tuple[float, int | None, str]] = []
    phases: dict[str, float] = {}
    peak_hwm = 0
    try:
        deadline = started + timeout
        for _ in range(int(timeout / SAMPLE_PERIOD) + 1):
            if not child.alive() or time.monotonic() > deadline:
                break
            t = round(time.monotonic() - started, 2)
            rss = None if profile else _status_kb(child.pid, "VmRSS")
            hwm = None if profile else _status_kb(child.pid, "VmHWM")
            peak_hwm = max(peak_hwm, hwm or 0)
            record = runs.get(SCOPE) or {}
            phase = record.get("phase", "")
            if record.get("status") == "running" and phase not in phases:
                phases[phase] = t
            samples.append((t, rss, phase if record.get("status") == "running" else ""))
            time.sleep(SAMPLE_PERIOD)
        timed_out = child.alive()
    finally:
        returncode = child.process.wait(1) if child.process and not child.alive() else None
        child.stop()
    process_wall = time.monotonic() - started
    if timed_out:
        raise RuntimeError(f"{mode} run did not finish in {timeout:.0f} s:\n{child.log_tail()}")
    if not out_path.exists():
        raise RuntimeError(f"{mode} run failed (exit {returncode}):\n{child.log_tail(30)}")
    others1 = {name: cpu_seconds(pids) for name, pids in stack.pids().items()}
    result = orjson.loads(out_path.read_bytes())
    record = result.pop("record")
    phase_seconds = _phase_seconds(phases, process_wall)
    rss_by_phase: dict[str, float] = {}
    for _, rss, phase in samples:
        if rss is not None and phase:
            rss_by_phase[phase] = max(rss_by_phase.get(phase, 0.0), round(rss / 1024, 1))
    out = {
        **result,
        "process_wall_seconds": round(process_wall, 2),
        "exit_code": returncode,
        "peak_rss_mb": round(result["ru_maxrss_kb"] / 1024, 1),
        "peak_rss_sampled_mb": round(peak_hwm / 1024, 1) if peak_hwm else None,
        "rss_before_job_mb": round(result["rss_before_job_kb"] / 1024, 1),
        "phase_seconds_approx": phase_seconds,
        "peak_rss_mb_by_phase": rss_by_phase,
        "cpu_seconds_other": {k: round(others1[k] - others0[k], 2) for k in others1},
        "graph_requests": stack.control("/_bench/requests"),
        "status": record.get("status"),
        "drift": {k: v for k, v in (record.get("drift") or {}).items() if k != "samples"},
        "errors": (record.get("errors") or [])[:10],
        "profiled": profile,
    }
    if profile and profile_out.exists():
        out["profile"] = graph_profile.summarise(profile_out)
    return out


def _phase_seconds(first_seen: dict[str, float], end: float) -> dict[str, float]:
    """Seconds per phase of the run, from when each was first sampled (±SAMPLE_PERIOD)."""
    ordered = sorted(first_seen.items(), key=lambda kv: kv[1])
    out = {}
    for i, (phase, t) in enumerate(ordered):
        until = ordered[i + 1][1] if i + 1 < len(ordered) else end
        out[phase] = round(until - t, 2)
    return out


# --- verification -----------------------------------------------------------------------


class Checker:
    """Compares the directory with the fake tenant, through the links Graph id → bridge id."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.directory = Directory(client, PREFIX)
        self.links = Links(client, PREFIX)
        self.problems: list[str] = []
        self.checked = 0

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)

    def docs(self, graph_ids: list[str]) -> dict[str, dict]:
        """Graph user id -> directory document, for the linked ones."""
        rids = self.links.bridge_ids("user", graph_ids)
        records = {r.id: r.doc for r in self.directory.get_many("user", list(rids.values()))}
        return {g: records[r] for g, r in rids.items() if r in records}

    def user(self, graph_user: dict, doc: dict | None, managers: dict[str, str]) -> None:
        self.checked += 1
        gid = graph_user["id"]
        if doc is None:
            self.problem(f"user {gid} is not in the directory")
            return
        ent = doc.get(ENTERPRISE) or {}
        work = [e.get("value") for e in doc.get("emails") or [] if e.get("type") == "work"]
        expected_manager = managers.get(graph_user["manager"]) if graph_user["manager"] else None
        pairs = {
            "userName": (doc.get("userName"), graph_user["userPrincipalName"]),
            "externalId": (doc.get("externalId"), graph_user["mailNickname"]),
            "active": (doc.get("active"), graph_user["accountEnabled"]),
            "displayName": (doc.get("displayName"), graph_user["displayName"]),
            "title": (doc.get("title"), graph_user["jobTitle"]),
            "name.givenName": ((doc.get("name") or {}).get("givenName"), graph_user["givenName"]),
            "name.familyName": ((doc.get("name") or {}).get("familyName"), graph_user["surname"]),
            "emails[work]": (work[0] if work else None, graph_user["mail"]),
            "department": (ent.get("department"), graph_user["department"]),
            "employeeNumber": (ent.get("employeeNumber"), graph_user["employeeId"]),
            "manager": ((ent.get("manager") or {}).get("value"), expected_manager),
        }
        for name, (got, want) in pairs.items():
            if got != want:
                self.problem(f"user {gid} {name}: {got!r} != {want!r}")

    def users(self, graph_users: list[dict]) -> None:
        docs = self.docs([u["id"] for u in graph_users])
        managers = self.links.bridge_ids(
            "user", [u["manager"] for u in graph_users if u["manager"]]
        )
        for u in graph_users:
            self.user(u, docs.get(u["id"]), managers)

    def groups(self, groups: dict[str, dict]) -> None:
        rids = self.links.bridge_ids("group", list(groups))
        for gid, want in groups.items():
            self.checked += 1
            rid = rids.get(gid)
            if rid is None:
                self.problem(f"group {gid} is not linked")
                continue
            record = self.directory.get_many("group", [rid])
            if not record or record[0].doc.get("displayName") != want["displayName"]:
                self.problem(f"group {gid}: displayName differs or record missing")
            members = {m.decode() for m in self.client.hkeys(f"{PREFIX}:group:{rid}:members")}
            linked = self.links.bridge_ids("user", want["members"])
            expected = set(linked.values())
            if len(linked) != len(want["members"]) or members != expected:
                self.problem(
                    f"group {gid}: {len(members)} members, expected {len(want['members'])} "
                    f"(missing {len(expected - members)}, extra {len(members - expected)})"
                )

    def membership(self, gid: str, uid: str, present: bool) -> None:
        self.checked += 1
        rid = self.links.bridge_ids("group", [gid]).get(gid)
        mid = self.links.bridge_ids("user", [uid]).get(uid)
        if rid is None or mid is None:
            self.problem(f"membership {gid}/{uid}: not linked")
            return
        if bool(self.client.hexists(f"{PREFIX}:group:{rid}:members", mid)) != present:
            self.problem(f"membership {gid}/{uid}: expected present={present}")

    def result(self, **extra) -> dict:
        return {
            "ok": not self.problems,
            "checked": self.checked,
            "problems": self.problems,
            **extra,
        }


def verify_full(stack: Stack) -> dict:
    assert stack.client is not None
    checker = Checker(stack.client)
    summary = stack.control("/_bench/summary")
    users, groups = checker.directory.count("user"), checker.directory.count("group")
    if users != summary["users_in_scope"]:
        checker.problem(f"directory has {users} users, expected {summary['users_in_scope']}")
    if groups != summary["groups"]:
        checker.problem(f"directory has {groups} groups, expected {summary['groups']}")
    sample = stack.control(
        "/_bench/sample", {"users": SAMPLE_USERS, "groups": SAMPLE_GROUPS, "seed": 7}
    )
    checker.users(sample["users"])
    checker.groups(sample["groups"])
    linked = stack.client.hlen(f"{PREFIX}:graph:link:user")
    if linked != users:
        checker.problem(f"{linked} user links for {users} users")
    return checker.result(
        directory_users=users,
        directory_groups=groups,
        sampled_users=len(sample["users"]),
        sampled_groups=len(sample["groups"]),
        sampled_memberships=sum(len(g["members"]) for g in sample["groups"].values()),
    )


def verify_changes(stack: Stack, manifest: dict, users_before: int) -> dict:
    assert stack.client is not None
    checker = Checker(stack.client)
    ids = [a["id"] for a in manifest["attributes"]]
    ids += [m["id"] for m in manifest["managers"]] + manifest["disabled"]
    docs = checker.docs(ids)
    for change in manifest["attributes"]:
        checker.checked += 1
        doc = docs.get(change["id"]) or {}
        got = {
            "jobTitle": doc.get("title"),
            "department": (doc.get(ENTERPRISE) or {}).get("department"),
            "surname": (doc.get("name") or {}).get("familyName"),
            "displayName": doc.get("displayName"),
        }
        for prop, want in change["set"].items():
            if got[prop] != want:
                checker.problem(f"user {change['id']} {prop}: {got[prop]!r} != {want!r}")
    managers = checker.links.bridge_ids("user", [m["manager"] for m in manifest["managers"]])
    for change in manifest["managers"]:
        checker.checked += 1
        doc = docs.get(change["id"]) or {}
        got = ((doc.get(ENTERPRISE) or {}).get("manager") or {}).get("value")
        if got is None or got != managers.get(change["manager"]):
            checker.problem(f"user {change['id']} manager: {got!r}")
    for uid in manifest["disabled"]:
        checker.checked += 1
        if (docs.get(uid) or {}).get("active") is not False:
            checker.problem(f"user {uid} is still active")
    for gid, uid in manifest["member_adds"]:
        checker.membership(gid, uid, True)
    for gid, uid in manifest["member_removes"]:
        checker.membership(gid, uid, False)
    new = manifest["new_users"]
    new_docs = checker.docs([u["id"] for u in new])
    for u in new:
        checker.user({**u, "manager": None}, new_docs.get(u["id"]), {})
    users = checker.directory.count("user")
    if users != users_before + len(new):
        checker.problem(f"directory has {users} users, expected {users_before + len(new)}")
    return checker.result(directory_users=users)


# --- the benchmark ----------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace) -> dict:
    results: dict = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "targets": {
            "full_seconds": TARGET_FULL_S,
            "full_peak_rss_mb": TARGET_FULL_RSS_MB,
            "incremental_seconds": TARGET_INCREMENTAL_S,
        },
        "config": {"users": args.users, "groups": args.groups, "changes": args.changes},
    }
    workdir = Path(tempfile.mkdtemp(prefix="graph-resync-bench-"))
    try:
        print(
            f"building the fake tenant: {args.users:,} users, {args.groups:,} groups...",
            flush=True,
        )
        server = "gunicorn" if args.keepalive else "werkzeug"
        results["config"]["fake_server"] = server
        with Stack(workdir, args.users, args.groups, args.seed, server) as stack:
            results["tenant"] = {**stack.ready["summary"], "build_s": stack.ready["build_seconds"]}
            results["config"]["fake_server"] = stack.ready["server"]
            print(f"tenant: {results['tenant']}", flush=True)
            rounds = [("", False)] + ([("_profiled", True)] if args.profile else [])
            for suffix, profile in rounds:
                if suffix:
                    assert stack.client is not None
                    stack.client.flushdb()  # a fresh directory; the tenant keeps its state
                    print("both runs again, the worker under py-spy...", flush=True)
                tag = "profiled-" if profile else ""
                print(f"full resync{' (py-spy)' if profile else ''}...", flush=True)
                full = run_worker(stack, "full", args.timeout, f"{tag}full", profile)
                full["verify"] = verify_full(stack)
                results[f"full{suffix}"] = full
                _print_run("full", full)
                print(f"applying {args.changes:,} changes in the tenant...", flush=True)
                manifest = stack.control(
                    "/_bench/changes",
                    {"count": args.changes, "seed": args.seed + 1000 + len(suffix)},
                )
                print("incremental resync" + (" (py-spy)" if profile else "") + "...", flush=True)
                incr = run_worker(stack, "incremental", args.timeout, f"{tag}incremental", profile)
                incr["changes"] = {
                    k: len(v) for k, v in manifest.items() if isinstance(v, list)
                } | {"total": manifest["count"]}
                incr["verify"] = verify_changes(stack, manifest, full["verify"]["directory_users"])
                results[f"incremental{suffix}"] = incr
                _print_run("incremental", incr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


# --- reporting --------------------------------------------------------------------------


def _ok(good: bool) -> str:
    return "ok" if good else "MISS"


def _print_run(name: str, run: dict) -> None:
    v = run["verify"]
    print(
        f"  {name}: job {run['job_seconds']:.1f} s, process {run['process_wall_seconds']:.1f} s, "
        f"peak RSS {run['peak_rss_mb']:.0f} MB, status {run['status']}, drift {run['drift']}, "
        f"verify {'ok' if v['ok'] else 'FAILED'} ({v['checked']} checks)",
        flush=True,
    )
    for p in v["problems"][:5]:
        print(f"    {p}")


def print_report(results: dict) -> None:
    t = results["tenant"]
    print()
    print(
        f"Graph resync: {t['users']:,} users ({t['users_in_scope']:,} in scope, "
        f"{t['direct_user_assignments']:,} assigned directly, {t['users_with_manager']:,} with "
        f"a manager), {t['groups']:,} groups, {t['memberships']:,} memberships"
    )
    header = (
        f"{'run':<22} {'job s':>7} {'process s':>9} {'target':>8} {'peak RSS MB':>11} "
        f"{'target':>7} {'CPU s':>6} {'fake s':>6} {'redis s':>7} {'requests':>8}  verify"
    )
    print(header)
    print("-" * len(header))
    for key in ("full", "incremental", "full_profiled", "incremental_profiled"):
        run = results.get(key)
        if run is None:
            continue
        full = key.startswith("full")
        limit = TARGET_FULL_S if full else TARGET_INCREMENTAL_S
        timing = "-" if run["profiled"] else _ok(run["job_seconds"] <= limit)
        memory = (
            _ok(run["peak_rss_mb"] <= TARGET_FULL_RSS_MB) if full and not run["profiled"] else ""
        )
        other = run["cpu_seconds_other"]
        print(
            f"{key:<22} {run['job_seconds']:>7.1f} {run['process_wall_seconds']:>9.1f} "
            f"{timing:>8} {run['peak_rss_mb']:>11.0f} {memory:>7} {run['job_cpu_s']:>6.1f} "
            f"{other['fake_graph']:>6.1f} {other['redis']:>7.1f} "
            f"{run['graph_requests']['total']:>8}  "
            f"{'ok' if run['verify']['ok'] else 'FAILED'} ({run['verify']['checked']})"
        )
    for key in ("full", "incremental"):
        run = results[key]
        print(
            f"\n{key}: phases (s, sampled every {SAMPLE_PERIOD} s): {run['phase_seconds_approx']}"
        )
        print(f"  peak RSS MB by phase: {run['peak_rss_mb_by_phase']}")
        print(f"  drift: {run['drift']}; Graph requests: {run['graph_requests']['by_route']}")
        if key == "incremental":
            print(f"  changes applied: {run['changes']}")
    for key in ("full_profiled", "incremental_profiled"):
        prof = (results.get(key) or {}).get("profile")
        if not prof:
            continue
        print(f"\n{key}: py-spy, {prof['samples']} samples (wall clock, --idle)")
        print("  inclusive % (bridge/workers):")
        for fn, pct in prof["own_inclusive_pct"][:20]:
            print(f"    {pct:>5.1f}%  {fn}")
        print("  self %:")
        for fn, pct in prof["self_pct"][:12]:
            print(f"    {pct:>5.1f}%  {fn}")
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.graph_resync", description=__doc__.split("\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="10,000 users and 200 groups")
    p.add_argument("--users", type=int, help="users in the tenant (100,000; quick 10,000)")
    p.add_argument("--groups", type=int, help="groups, 100 members on average (2,000; quick 200)")
    p.add_argument("--changes", type=int, default=CHANGES, help="changes before the incremental")
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--profile", action="store_true", help="repeat both runs under py-spy")
    p.add_argument(
        "--keepalive",
        action="store_true",
        help="serve the fake with HTTP/1.1 keep-alive (gunicorn) instead of a connection "
        "per request (werkzeug, as the tests do)",
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run before failing")
    p.add_argument("--output", type=Path, help="JSON results (default results/graph_resync.json)")
    args = p.parse_args(argv)
    if args.users is None:
        args.users = 10_000 if args.quick else 100_000
    if args.groups is None:
        args.groups = 200 if args.quick else 2_000
    if args.output is None:
        name = "graph_resync" + ("_quick" if args.quick else "")
        name += "_keepalive" if args.keepalive else ""
        args.output = RESULTS.with_name(f"{name}.json")
    return args


def verified(results: dict) -> bool:
    """Whether every run's directory matched the fake tenant afterwards."""
    return all(results[k]["verify"]["ok"] for k in results if k.startswith(("full", "incremental")))


def main(argv: list[str] | None = None) -> int:
    return run_main(parse_args(argv), run_benchmark, print_report, verified)


if __name__ == "__main__":
    sys.exit(main())
