"""The bridge beside scimgateway and scim2-server in one run: ``python -m bench.scim_load --peers``.

Every server is up for the whole run and idle outside its own cells; cells (scenario ×
concurrency × server) alternate between the servers, the first server rotating from one
scenario to the next. Each server gets the same Entra-shaped requests (bench.scenarios),
only the path prefix differs (``/scim/v2`` for the bridge, ``/v2`` for scim2-server, none
for scimgateway); any 2xx answer counts as a success. Data a scenario needs is seeded
before its cell: into the bridge's Redis through its own write path, into the peers over
HTTP (``POST /Users``, ``POST /Groups``), and the cell starts once the server's processes
are idle. See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
import redis

from bench import entra, loadgen, memory, procs
from bench.common import machine
from bench.peers import PEERS, Peer
from bench.scenarios import SCENARIOS, Context, Scenario
from bench.served import DESCRIPTION, ServedBridge
from bridge.directory.tokens import TokenStore
from bridge.runtime.embedded_redis import EmbeddedRedis
from bridge.scim.resource_types import build_resource_types

RESULTS = Path(__file__).resolve().parent / "results" / "scim_load_peers.json"
BRIDGE_PREFIX = "/scim/v2"
OK = tuple(range(200, 300))
SEED_CONNECTIONS = 8
SEED_TIMEOUT = 600.0
QUICK_POOLS = (1000, 3000)
"""Lookup users and member users seeded with --quick."""
MB = 1024 * 1024

Row = dict[str, Any]


# --- servers ---------------------------------------------------------------------------


class Server:
    """A server under test: its port, token, path prefix, seeding and process tree."""

    name = ""
    prefix = ""
    port = 0
    token = ""
    context: Context

    def processes(self) -> list[psutil.Process]:
        raise NotImplementedError

    def roles(self) -> dict[str, list[psutil.Process]]:
        """The process tree by role (the bridge's web tier, workers, Redis)."""
        return {}

    def describe(self) -> str:
        raise NotImplementedError

    def notes(self) -> list[str]:
        """What had to differ for this server (seeding), to print beside the figures."""
        return []

    def memory(self) -> dict[str, float]:
        """RSS of the process tree in MB (and, for the bridge, per role)."""
        members = self.processes()
        return {
            "rss_mb": round(procs.rss_bytes(members) / MB, 1),
            "pss_mb": round(procs.pss_bytes(members) / MB, 1),
        }

    def stop(self) -> None:
        raise NotImplementedError


class Bridge(Server):
    """AOF Redis plus ``bridge.runtime.serve`` (granian web tier, delivery and sync workers)."""

    name = "bridge"
    prefix = BRIDGE_PREFIX

    def __init__(self, workdir: Path, context_for: Callable[[redis.Redis | None], Context]) -> None:
        self.redis_server = EmbeddedRedis(workdir / "redis", appendonly=True)
        self.redis_server.start()
        self.client = redis.Redis.from_url(self.redis_server.url)
        _, self.token = TokenStore(self.client, "bridge").create("bench")
        self.served = ServedBridge(workdir, self.redis_server.url)
        self.served.start()
        self.port = self.served.port
        self.context = context_for(self.client)

    def _redis(self) -> list[psutil.Process]:
        process = self.redis_server.process
        return procs.tree(process.pid) if process is not None else []

    def processes(self) -> list[psutil.Process]:
        return [*self.served.processes(), *self._redis()]

    def roles(self) -> dict[str, list[psutil.Process]]:
        return {**self.served.roles(), "redis": self._redis()}

    def memory(self) -> dict[str, float]:
        out = super().memory()
        for role, members in self.roles().items():
            out[f"{role.replace(' ', '_')}_rss_mb"] = round(procs.rss_bytes(members) / MB, 1)
        info = self.client.info("memory")
        out["redis_used_memory_mb"] = round(info["used_memory"] / MB, 1)
        return out

    def describe(self) -> str:
        return f"{DESCRIPTION}; Redis AOF everysec"

    def stop(self) -> None:
        self.served.stop()
        self.client.close()
        self.redis_server.stop()


class PeerServer(Server):
    """A peer (bench.peers) seeded over HTTP."""

    def __init__(self, peer: Peer, context_for: Callable[[redis.Redis | None], Context]) -> None:
        self.peer = peer
        self.name = peer.name
        self.prefix = peer.prefix
        peer.start()
        self.port = peer.port
        self.token = peer.token
        self.context = context_for(None)
        self.seeder = HttpSeeder(self)
        self.context.seeder = self.seeder

    def processes(self) -> list[psutil.Process]:
        return self.peer.processes()

    def notes(self) -> list[str]:
        return self.seeder.notes

    def describe(self) -> str:
        return self.peer.describe()

    def stop(self) -> None:
        self.peer.stop()


# --- seeding and request shaping ---------------------------------------------------------


class HttpSeeder:
    """Creates users and groups through the server's own SCIM API, 8 connections at once."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.notes: list[str] = []

    def users(self, tags: list[str]) -> list[str]:
        ids = self._create("Users", [entra.dumps(entra.entra_user(t)) for t in tags])
        return self._check(ids, "users")

    def groups(self, tags: list[str]) -> list[str]:
        ids = self._create("Groups", [entra.dumps(entra.entra_group(t)) for t in tags])
        failed = [i for i, gid in enumerate(ids) if gid is None]
        if failed:  # scim2-server refuses Entra's ADSCIM group schema: seed core groups
            core = [_core_group(tags[i]) for i in failed]
            for i, gid in zip(failed, self._create("Groups", core), strict=True):
                ids[i] = gid
            note = f"{self.server.name}: Entra's group body refused; groups seeded with the core schema only"
            if note not in self.notes:
                self.notes.append(note)
        return self._check(ids, "groups")

    def _create(self, endpoint: str, bodies: list[bytes]) -> list[str | None]:
        ids: list[str | None] = [None] * len(bodies)
        path = f"{self.server.prefix}/{endpoint}"
        n = SEED_CONNECTIONS

        def vu(number: int) -> loadgen.VirtualUser:
            for i in range(number, len(bodies), n):
                response = yield loadgen.Request("POST", path, bodies[i], "seed", OK)
                if 200 <= response.status < 300 and response.body:
                    ids[i] = orjson.loads(response.body).get("id")

        per_conn = math.ceil(len(bodies) / n) + 1
        loadgen.run("127.0.0.1", self.server.port, self.server.token, vu, n, SEED_TIMEOUT, per_conn)
        return ids

    def _check(self, ids: list[str | None], what: str) -> list[str]:
        missing = sum(1 for i in ids if i is None)
        if missing:
            raise RuntimeError(f"{self.server.name}: {missing} of {len(ids)} {what} not created")
        return [i for i in ids if i is not None]


def _core_group(tag: str) -> bytes:
    body = entra.entra_group(tag)
    body["schemas"] = [entra.GROUP_SCHEMA]
    return entra.dumps(body)


def on_server(factory: loadgen.VirtualUserFactory, prefix: str) -> loadgen.VirtualUserFactory:
    """The scenario's requests with the server's path prefix; every 2xx is a success."""

    def vu(number: int) -> loadgen.VirtualUser:
        inner = factory(number)
        try:
            request = next(inner)
            while True:
                path = prefix + request.path.removeprefix(BRIDGE_PREFIX)
                response = yield replace(request, path=path, expect=OK)
                request = inner.send(response)
        except StopIteration:
            return

    return vu


# --- cells ------------------------------------------------------------------------------


def users_held(server: Server) -> int | None:
    """``totalResults`` of ``GET /Users`` (one resource asked for), None when not answered:
    how large the store is matters to servers that scan it."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {server.token}"}
        conn.request("GET", f"{server.prefix}/Users?startIndex=1&count=1", headers=headers)
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            return None
        total = orjson.loads(body).get("totalResults")
        return total if isinstance(total, int) else None
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def run_cell(server: Server, scenario: Scenario, concurrency: int, duration: float) -> Row:
    """One scenario on one server: seed, wait until idle, then the timed window."""
    from bench.scim_load import summarise

    per_conn = math.ceil(scenario.requests_per_second_cap * duration / concurrency) + 10
    seeding = time.monotonic()
    factory = on_server(scenario.prepare(server.context, concurrency, per_conn), server.prefix)
    seeded = round(time.monotonic() - seeding, 2)
    held = users_held(server)
    idle_wait = procs.wait_idle(server.processes)
    members = server.processes()
    roles = server.roles()
    cpu0 = procs.cpu_seconds(members)
    role_cpu0 = {role: procs.cpu_seconds(m) for role, m in roles.items()}
    stats, window = loadgen.run(
        "127.0.0.1",
        server.port,
        server.token,
        factory,
        concurrency,
        duration,
        per_conn,
        2 if concurrency >= 16 else 1,
    )
    cpu = procs.cpu_seconds(members) - cpu0
    row = summarise(stats, window)
    row["cpu_cores"] = round(cpu / window, 2)
    row["cpu_ms_per_request"] = round(cpu * 1000 / row["requests"], 3) if row["requests"] else None
    for role, m in roles.items():
        spent = procs.cpu_seconds(m) - role_cpu0[role]
        row[f"{role.replace(' ', '_')}_cpu_cores"] = round(spent / window, 2)
    row["client_cpu_cores"] = round(stats.cpu_seconds / window, 2)
    row["processes"] = len(members)
    row["seed_seconds"] = seeded
    row["users_at_start"] = held
    row["idle_wait_seconds"] = idle_wait
    row.update(server.memory())
    return row


def _context_factory(quick: bool) -> Callable[[redis.Redis | None], Context]:
    types = build_resource_types([], [])
    tag = f"r{int(time.time())}"

    def make(client: redis.Redis | None) -> Context:
        context = Context(client, types["User"], types["Group"], tag, itertools.count())
        if quick:
            context.lookup_pool, context.member_pool_size = QUICK_POOLS
        return context

    return make


def start_servers(workdir: Path, names: list[str], quick: bool, results: Row) -> list[Server]:
    """Start the bridge and every available peer; a peer that cannot run is reported."""
    context_for = _context_factory(quick)
    servers: list[Server] = []
    try:
        if "bridge" in names:
            servers.append(Bridge(workdir / "bridge", context_for))
        for peer_type in PEERS:
            peer = peer_type(workdir)
            if peer.name not in names:
                continue
            reason = peer.unavailable()
            if reason is None:
                try:
                    servers.append(PeerServer(peer, context_for))
                    continue
                except (OSError, RuntimeError) as exc:
                    peer.stop()
                    reason = f"did not start: {exc}"
            print(f"{peer.name} not available: {reason}", flush=True)
            results["servers"][peer.name] = {"available": False, "why": reason}
    except BaseException:
        for server in servers:
            server.stop()
        raise
    for server in servers:
        results["servers"][server.name] = {"available": True, "what": server.describe()}
    return servers


def warm_up(server: Server) -> None:
    """A second of creates: imports, connections, token caches, Bun's JIT."""
    run_cell(server, SCENARIOS["create"], 8, 1.0)


def run_peers(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "duration_seconds": args.duration,
        "concurrency": args.concurrency,
        "preloaded_users": args.preload,
        "servers": {},
        "scenarios": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="scim-peers-"))
    os.mkdir(workdir / "bridge")
    servers: list[Server] = []
    try:
        servers = start_servers(workdir, args.servers, args.quick, results)
        for server in servers:
            if args.preload:
                print(f"preloading {args.preload:,} users into {server.name}...", flush=True)
                server.context.seed_users(server.context.tags("pre", args.preload))
            print(f"warming up {server.name}...", flush=True)
            warm_up(server)
        for index, name in enumerate(args.scenarios):
            order = servers[index % len(servers) :] + servers[: index % len(servers)]
            results["scenarios"][name] = {}
            for c in args.concurrency:
                cells = results["scenarios"][name][str(c)] = {}
                for server in order:
                    row = run_cell(server, SCENARIOS[name], c, args.duration)
                    cells[server.name] = row
                    _progress(name, c, server.name, row)
        notes = [note for server in servers for note in server.notes()]
        if notes:
            results["notes"] = notes
    finally:
        for server in servers:
            server.stop()
    try:
        if args.memory_users and "bridge" in args.servers:
            print(f"loading {args.memory_users:,} users for the Redis memory figure...", flush=True)
            results["memory"] = memory.measure(workdir / "memory", args.memory_users)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _progress(name: str, c: int, server: str, row: Row) -> None:
    print(
        f"  {name:<13} c={c:<3} {server:<12} {row['rps']:>8,.0f} req/s  "
        f"p50 {row['p50_ms']:>6.1f} ms  p99 {row['p99_ms']:>6.1f} ms  "
        f"cpu {row['cpu_cores']:.2f} cores, {row['cpu_ms_per_request'] or 0:.2f} ms/req  "
        f"rss {row['rss_mb']:,.0f} MB  non-2xx {row['errors']}",
        flush=True,
    )
    for sample in row.get("error_samples", [])[:2]:
        print(f"      ! {sample[:300]}", flush=True)
