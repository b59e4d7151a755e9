"""CPU per SCIM request in the web tier, in process: CPU µs, or instructions (Ir) under callgrind.

    python -m bench.request_cpu [--requests 400] [--scenarios create,lookup,...]
    python -m bench.request_cpu --callgrind [--save after]   # instructions per request

A private redis-server (``EmbeddedRedis``, AOF ``everysec``), the app from ``create_app()``,
and N requests of each scenario sent straight to the WSGI callable (``app.wsgi_app``'s
middleware included) with environs built before the clock starts: neither an HTTP server
nor Flask's test client (whose cookie and URL handling costs about what the app does) is
measured. What is measured is everything the app does per request in this process: its
threads (the audit trail's writer) too, and redis-py; not Redis itself.

- CPU µs per request: ``time.process_time`` around the N requests, and Redis's own
  (``INFO cpu``) beside it. The machine is shared, so these move with its load.
- ``--callgrind``: the script runs itself under ``valgrind --tool=callgrind`` (instrumented
  only while a scenario runs, counted only over its N requests, through callgrind's client
  requests in a small C helper compiled with ``cc``) and prints instructions per request,
  which repeat to within a fraction of a per cent whatever else the machine does.

Scenarios (Entra-shaped bodies from :mod:`bench.entra`): ``create`` (POST /Users),
``lookup`` (GET /Users?filter=userName eq "..."), ``patch_user`` (Entra's Replace
operations, ``active: "False"``), ``group_add100`` (PATCH /Groups adding 100 members),
``mixed`` (Entra's cycle of 7 requests; figures per request).

To make repeated runs count the same instructions, three things that run on the wall
clock are put on a fixed footing: the audit trail's writer flushes every ``BATCH``
entries (as under load) rather than every 0.25 s; the backpressure check reads the backlog
once per 1,000 requests (as at 1,000 req/s); hash randomisation is fixed under callgrind.
GC: each measured window starts after a full collection, so the collector's young
generations run in it as they would in a server, but no full collection does (one comes
every ~20,000 creates and costs ~100 ms, ~5 µs a request; inside a window of 200 requests
it would add ~12 % to that window, or not, depending on where the counts stood).

``--save NAME`` records the figures under ``NAME`` in ``bench/results/request_cpu.json``.
"""

from __future__ import annotations

import gc
import io
import itertools
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import entra
from bench.callgrind import CpuBenchmark, Marks

RESULTS = Path(__file__).parent / "results" / "request_cpu.json"
SCENARIOS = ("create", "lookup", "patch_user", "group_add100", "mixed")
WARM_UP = 30
"""Requests of each scenario sent before it is measured (first-use imports, caches)."""

# --- requests -------------------------------------------------------------------------------


@dataclass
class Client:
    """Sends prebuilt WSGI environs to the app, as a WSGI server would."""

    app: Callable[..., Any]
    token: str
    status: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def environ(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        path, _, query = path.partition("?")
        env: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_AUTHORIZATION": f"Bearer {self.token}",
            "HTTP_ACCEPT": "application/scim+json",
            "HTTP_USER_AGENT": "Azure Active Directory SCIM Client",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body or b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body is not None:
            env["CONTENT_TYPE"] = "application/scim+json"
            env["CONTENT_LENGTH"] = str(len(body))
        return env

    def _start_response(self, status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
        self.status, self.headers = status, headers
        return None

    def send(self, env: dict[str, Any], expect: int = 200) -> bytes:
        result = self.app(env, self._start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close:
                close()
        if int(self.status[:3]) != expect:
            raise RuntimeError(
                f"{env['REQUEST_METHOD']} {env['PATH_INFO']}: {self.status} {body[:300]!r}"
            )
        return body

    def send_only(self, env: dict[str, Any], expect: int = 200) -> None:
        self.send(env, expect)

    def location_id(self) -> str:
        return next(v for k, v in self.headers if k == "Location").rsplit("/", 1)[-1]


def lookup(name: str) -> str:
    return "/scim/v2/Users?filter=" + quote(f'userName eq "{name}"')


# --- scenarios: each returns a function that sends request number i --------------------------


@dataclass
class Bench:
    client: Client
    seed_users: Callable[[list[str]], list[str]]
    seed_groups: Callable[[list[str]], list[str]]
    seq: Iterator[int] = field(default_factory=itertools.count)
    pool: list[str] = field(default_factory=list)

    def tags(self, kind: str, n: int) -> list[str]:
        base = next(self.seq)
        return [f"{kind}{base}-{i}" for i in range(n)]

    def member_pool(self, size: int) -> list[str]:
        if len(self.pool) < size:
            self.pool += self.seed_users(self.tags("m", size - len(self.pool)))
        return self.pool[:size]


Prepared = Callable[[int], None]
"""Sends the ``i``-th request (or cycle) of a scenario; built with its data seeded and its
environs made beforehand."""


def create(b: Bench, n: int) -> Prepared:
    c = b.client
    envs = [
        c.environ("POST", "/scim/v2/Users", entra.dumps(entra.entra_user(t)))
        for t in b.tags("c", n)
    ]
    return lambda i: c.send_only(envs[i], 201)


def lookup_user(b: Bench, n: int) -> Prepared:
    c = b.client
    tags = b.tags("l", n)
    b.seed_users(tags)
    envs = [c.environ("GET", lookup(entra.user_name(t))) for t in tags]
    return lambda i: c.send_only(envs[i])


def patch_user(b: Bench, n: int) -> Prepared:
    c = b.client
    ids = b.seed_users(b.tags("p", 50))
    envs = [
        c.environ("PATCH", f"/scim/v2/Users/{ids[i % 50]}", entra.dumps(entra.user_update(i // 50)))
        for i in range(n)
    ]
    return lambda i: c.send_only(envs[i])


def group_add100(b: Bench, n: int) -> Prepared:
    c = b.client
    pool = b.member_pool(2000)
    chunks = len(pool) // 100
    groups = b.seed_groups(b.tags("g", n // chunks + 1))
    envs = [
        c.environ(
            "PATCH",
            f"/scim/v2/Groups/{groups[i // chunks]}",
            entra.dumps(entra.add_members(pool[(i % chunks) * 100 : (i % chunks + 1) * 100])),
        )
        for i in range(n)
    ]
    return lambda i: c.send_only(envs[i], 204)


MIXED_REQUESTS = 7


def mixed(b: Bench, n: int) -> Prepared:
    """Entra's cycle for a new user (lookup, create, lookup, PATCH, disable), then a new group
    with 150 members; ``n`` requests are ``n // 7`` cycles."""
    c = b.client
    pool = b.member_pool(3000)
    cycles = []
    for k, tag in enumerate(b.tags("x", n // MIXED_REQUESTS + 1)):
        name = entra.user_name(tag)
        members = pool[(k % 20) * 150 : (k % 20 + 1) * 150]
        cycles.append(
            (
                c.environ("GET", lookup(name)),
                c.environ("POST", "/scim/v2/Users", entra.dumps(entra.entra_user(tag))),
                c.environ("GET", lookup(name)),
                entra.dumps(entra.user_update(k)),
                entra.dumps(entra.disable()),
                c.environ("POST", "/scim/v2/Groups", entra.dumps(entra.entra_group(tag))),
                entra.dumps(entra.add_members(members)),
            )
        )

    def cycle(k: int) -> None:
        find, post, find_again, update, disable, post_group, add = cycles[k]
        c.send(find)
        c.send(post, 201)
        uid = c.location_id()
        c.send(find_again)
        c.send(c.environ("PATCH", f"/scim/v2/Users/{uid}", update))
        c.send(c.environ("PATCH", f"/scim/v2/Users/{uid}", disable))
        c.send(post_group, 201)
        gid = c.location_id()
        c.send(c.environ("PATCH", f"/scim/v2/Groups/{gid}", add), 204)

    return cycle


PREPARE: dict[str, Callable[[Bench, int], Prepared]] = {
    "create": create,
    "lookup": lookup_user,
    "patch_user": patch_user,
    "group_add100": group_add100,
    "mixed": mixed,
}


# --- measuring --------------------------------------------------------------------------------


def build_app(redis_url: str) -> tuple[Any, Bench, Any]:
    """The app as deployed (rate limit on but out of reach), and what seeds its data."""
    from app import create_app
    from bridge.observability import audit_log
    from bridge.runtime.config import Settings
    from bridge.web.observe import EXTENSION_KEY

    audit_log.FLUSH_SECONDS = 3600.0  # the writer flushes every BATCH entries (see above)
    settings = Settings.from_env(
        {"REDIS_URL": redis_url, "BRIDGE_LOG_LEVEL": "WARNING", "BRIDGE_RATE_LIMIT": "1000000000"}
    )
    app = create_app(settings)
    ticks = itertools.count()
    app.extensions["backpressure"].clock = lambda: next(ticks) / 1000.0
    services = app.extensions["bridge"]
    token = services.tokens.create("bench")[1]
    rtypes = services.resource_types
    _fill_pool(services.redis, POOLED)
    client = Client(app.wsgi_app, token)
    bench = Bench(
        client,
        lambda tags: entra.seed_users(services.redis, rtypes["User"], tags),
        lambda tags: entra.seed_groups(services.redis, rtypes["Group"], tags),
    )
    return app, bench, app.extensions[EXTENSION_KEY]["audit"]


POOLED = 4
"""Connections opened before anything is measured: the request thread and the audit
trail's writer each hold one at times, and a connection opened inside a measured window
(its handshake) would be counted as part of the requests."""


def _fill_pool(client: Any, connections: int) -> None:
    pool = client.connection_pool
    held = [pool.get_connection() for _ in range(connections)]
    for connection in held:
        pool.release(connection)


def measure(names: list[str], requests: int, marks: Marks) -> dict[str, dict[str, float]]:
    """CPU µs per request of each scenario on a private Redis: this process's, and Redis's
    (``INFO cpu``, which includes its once-a-tick housekeeping)."""
    import redis

    from bridge.runtime.embedded_redis import EmbeddedRedis

    web: dict[str, float] = {}
    server_cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=True)
        server.start()
        try:
            _app, bench, audit = build_app(server.url)
            probe = redis.Redis.from_url(server.url)
            for name in names:
                per = MIXED_REQUESTS if name == "mixed" else 1
                calls = max(1, requests // per)
                warm = max(1, WARM_UP // per)
                send = PREPARE[name](bench, (calls + warm) * per)
                marks.start()
                for i in range(warm):
                    send(i)
                audit.flush()
                gc.collect()  # the window starts with empty generations (see GC below)
                redis_cpu = _redis_cpu(probe)
                marks.zero()
                cpu = time.process_time()
                for i in range(warm, warm + calls):
                    send(i)
                audit.flush()
                cpu = time.process_time() - cpu
                marks.dump(name)
                marks.stop()
                redis_cpu = _redis_cpu(probe) - redis_cpu
                web[name] = cpu / (calls * per) * 1e6
                server_cpu[name] = redis_cpu / (calls * per) * 1e6
            probe.close()
        finally:
            server.stop()
    return {"cpu_us_per_request": web, "redis_cpu_us_per_request": server_cpu}


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


BENCHMARK = CpuBenchmark(
    module="bench.request_cpu",
    description=__doc__ or "",
    unit="request",
    many="requests",
    scenarios=SCENARIOS,
    measure=measure,
    results=RESULTS,
    units=lambda name, count: (
        max(1, count // MIXED_REQUESTS) * MIXED_REQUESTS if name == "mixed" else count
    ),
)


if __name__ == "__main__":
    BENCHMARK.main()
