"""What request ids, SCIM metrics and the audit trail cost a SCIM create, in process.

    python -m bench.observe_overhead [--requests 3000] [--rounds 10]

Three apps on one private Redis (AOF off: the write itself is not what is measured),
each sent Entra's create-user body through Flask's test client, in interleaved rounds so
that the shared machine's noise falls on all of them alike:

- ``full``: as deployed (request id, metrics, audit trail);
- ``no_audit``: ``BRIDGE_AUDIT_MAX_ENTRIES=0``;
- ``bare``: neither the request hooks nor the directory-write metrics.

Prints the median time per create of each, and the difference. Run it from a checkout
without this module's hooks (an older commit) to compare with before.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from app import create_app
from bridge.runtime.config import Settings
from bridge.runtime.embedded_redis import EmbeddedRedis


def body() -> dict:
    name = f"user-{uuid.uuid4()}"
    return {
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "externalId": str(uuid.uuid4()),
        "userName": f"{name}@contoso.test",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"{name}@contoso.test"}],
        "name": {"formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada"},
        "displayName": "Ada Lovelace",
    }


def strip_hooks(app) -> None:
    """The app without the observability hooks (``bare``)."""
    try:
        from bridge.observability import metrics
        from bridge.web import observe
    except ImportError:  # an older checkout: nothing to strip
        return
    app.before_request_funcs[None] = [
        f for f in app.before_request_funcs[None] if f is not observe._start
    ]
    app.after_request_funcs[None] = [
        f for f in app.after_request_funcs[None] if f is not observe._finish
    ]
    app.extensions["bare"] = metrics


def run_round(app, token: str, n: int) -> tuple[float, float]:
    """Seconds per create over ``n`` creates: wall time, and this process's CPU time
    (every thread's: the audit trail's writer too), which the shared machine's load
    disturbs less."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    bodies = [body() for _ in range(n)]
    bare = app.extensions.get("bare")
    saved = bare.observe_write if bare else None
    if bare:
        bare.observe_write = lambda *a: None
    started, cpu = time.perf_counter(), time.process_time()
    for b in bodies:
        response = client.post("/scim/v2/Users", json=b, headers=headers)
        assert response.status_code == 201, response.data
    audit = app.extensions.get("bridge_observe", {}).get("audit")
    if audit is not None:
        audit.flush()  # what this round buffered is written inside the round
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if bare:
        bare.observe_write = saved
    return elapsed / n, cpu / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--requests", type=int, default=3000, help="creates per app in total")
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = EmbeddedRedis(Path(tmp), appendonly=False)
        redis_server.start()
        try:
            base = Settings.from_env({"REDIS_URL": redis_server.url, "BRIDGE_LOG_LEVEL": "WARNING"})
            variants = {"full": base, "no_audit": base, "bare": base}
            if hasattr(base, "audit_max_entries"):
                variants["no_audit"] = replace(base, audit_max_entries=0)
                variants["bare"] = replace(base, audit_max_entries=0)
            apps = {}
            for name, settings in variants.items():
                app = create_app(settings)
                if name == "bare":
                    strip_hooks(app)
                token = app.extensions["bridge"].tokens.create(name)[1]
                apps[name] = (app, token)
                run_round(app, token, 200)  # warm up
            per = max(1, args.requests // args.rounds)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
            names = list(apps)
            for n in range(args.rounds):
                for name in names[n % 3 :] + names[: n % 3]:  # each goes first in turn
                    app, token = apps[name]
                    times[name].append(run_round(app, token, per))
            wall = {name: statistics.median(t[0] for t in v) * 1e6 for name, v in times.items()}
            cpu = {name: statistics.median(t[1] for t in v) * 1e6 for name, v in times.items()}
            for name in apps:
                print(f"{name:9s} wall {wall[name]:7.1f} µs  cpu {cpu[name]:7.1f} µs per create")
            for label, a, b in (
                ("metrics + request id", "no_audit", "bare"),
                ("audit trail", "full", "no_audit"),
            ):
                print(
                    f"{label:21s} wall {wall[a] - wall[b]:+7.1f} µs  cpu {cpu[a] - cpu[b]:+7.1f} µs"
                )
        finally:
            redis_server.stop()


if __name__ == "__main__":
    main()
