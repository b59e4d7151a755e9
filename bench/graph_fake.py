"""The fake Microsoft Graph of the Graph resync benchmark, as a process of its own.

    python -m bench.graph_fake --users N --groups G --tls-dir DIR --ready FILE [--seed S]

Builds an Entra-shaped tenant (``tests.fakes.graph_tenant.Tenant``), serves
``tests.fakes.graph.FakeGraph`` over HTTPS with the certificate in ``--tls-dir`` (made by
``tests.fakes.graph_tls.make_server_tls``), then writes ``--ready`` (JSON: URL, tenant,
client, service principal, build time). It stops on SIGTERM/SIGINT, when its parent goes
away, or after ``--max-seconds``.

Control routes, on the same server, need the ``X-Bench-Control`` header (``--control-token``
or BENCH_CONTROL_TOKEN)::

    GET  /_bench/summary               counts of users, groups, assignments, memberships
    POST /_bench/sample   {"users", "groups", "seed"}   Graph users and group members to check
    POST /_bench/changes  {"count", "seed"}             apply changes, return what to expect
    POST /_bench/requests                               Graph requests served since last call
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
from werkzeug.wrappers import Request, Response

from bridge.runtime.embedded_redis import free_port
from tests.fakes.graph import FakeGraph
from tests.fakes.graph_tenant import DEFAULT_APP_ROLE_ID, USER_TYPE, Tenant
from tests.fakes.graph_tls import ServerTLS, serve_tls

GIVEN = (
    "Ada Alan Grace Linus Margaret Barbara Ken Dennis Edsger Donald Frances Radia John Niklaus "
    "Leslie Tim Vint Bjarne Guido Anita Shafi Silvio Judea Yoshua Geoffrey Fei Hedy Katherine"
).split()
SURNAMES = (
    "Lovelace Turing Hopper Torvalds Hamilton Liskov Thompson Ritchie Dijkstra Knuth Allen "
    "Perlman McCarthy Wirth Lamport Berners-Lee Cerf Stroustrup Rossum Borg Goldwasser Micali "
    "Pearl Bengio Hinton Li Lamarr Johnson"
).split()
DEPARTMENTS = (
    "Engineering Sales Marketing Finance Legal Research Support Operations HR Design Security "
    "Procurement Facilities Training Data Platform Mobile Web Infrastructure Compliance"
).split()
TITLES = (
    "Engineer",
    "Senior Engineer",
    "Staff Engineer",
    "Manager",
    "Director",
    "Analyst",
    "Designer",
    "Account Executive",
    "Specialist",
    "Consultant",
    "Intern",
    "Architect",
)
MANAGER_SHARE = 0.3
"""Users that have a manager (anywhere in the tenant)."""
DIRECT_EXTRA_SHARE = 0.02
"""Users assigned directly although a group already brings them in scope."""
GROUP_SIZE = (20, 180)
"""Members per group, uniform: 100 on average."""
PARENT_CHECK_SECONDS = 1.0


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class BenchTenant:
    """The tenant plus what the benchmark needs to change and check it."""

    def __init__(self, users: int, groups: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tenant = Tenant(service_principal_id=_uuid(self.rng))
        self.user_ids: list[str] = []
        self.group_ids: list[str] = []
        self.group_count: Counter[str] = Counter()  # user id -> assigned groups it is in
        self.direct: set[str] = set()
        self.changes_applied = 0
        self._build(users, groups)

    def _build(self, n_users: int, n_groups: int) -> None:
        rng, tenant = self.rng, self.tenant
        ids = [_uuid(rng) for _ in range(n_users)]
        for i, uid in enumerate(ids):
            given, surname = rng.choice(GIVEN), rng.choice(SURNAMES)
            nick = f"{given}.{surname}{i}".lower()
            attrs = {
                "id": uid,
                "mailNickname": nick,
                "userPrincipalName": f"{nick}@contoso.test",
                "mail": f"{nick}@contoso.test",
                "displayName": f"{given} {surname}",
                "givenName": given,
                "surname": surname,
                "accountEnabled": rng.random() > 0.01,
                "department": rng.choice(DEPARTMENTS),
                "employeeId": f"E{i:07d}",
                "jobTitle": rng.choice(TITLES),
            }
            if rng.random() < MANAGER_SHARE:
                manager = ids[rng.randrange(n_users)]
                if manager != uid:
                    attrs["manager"] = manager
            tenant.add_user(**attrs)
        self.user_ids = ids
        for g in range(n_groups):
            size = min(n_users, rng.randint(*GROUP_SIZE))
            members = [ids[k] for k in rng.sample(range(n_users), size)]
            group = tenant.add_group(
                members=members,
                id=_uuid(rng),
                displayName=f"{rng.choice(DEPARTMENTS)} team {g:05d}",
                mailNickname=f"team{g:05d}",
            )
            self.group_ids.append(group["id"])
            self.group_count.update(members)
        # assignments in bulk (Tenant.assign copies the list each time); same records
        assignments = [self._assignment(gid, "Group") for gid in self.group_ids]
        for uid in ids:
            if self.group_count[uid] == 0 or rng.random() < DIRECT_EXTRA_SHARE:
                self.direct.add(uid)
                assignments.append(self._assignment(uid, "User"))
        tenant.assignments = assignments

    def _assignment(self, principal_id: str, kind: str) -> dict:
        collection = self.tenant.users if kind == "User" else self.tenant.groups
        return {
            "id": str(uuid.uuid4()),
            "appRoleId": DEFAULT_APP_ROLE_ID,
            "principalId": principal_id,
            "principalType": kind,
            "principalDisplayName": collection.objects[principal_id]["displayName"],
            "resourceId": self.tenant.service_principal_id,
        }

    # --- control ----------------------------------------------------------------------------
    def summary(self) -> dict:
        t = self.tenant
        return {
            "users": len(t.users.objects),
            "groups": len(t.groups.objects),
            "assignments": len(t.assignments),
            "direct_user_assignments": len(self.direct),
            "memberships": sum(len(g["_members"]) for g in t.groups.objects.values()),
            "users_with_manager": sum(1 for u in t.users.objects.values() if u["_manager"]),
            "users_in_scope": sum(
                1 for uid in self.user_ids if uid in self.direct or self.group_count[uid]
            ),
            "changes_applied": self.changes_applied,
        }

    def sample(self, users: int, groups: int, seed: int) -> dict:
        rng = random.Random(seed)
        t = self.tenant
        with t.lock:
            picked = rng.sample(self.user_ids, min(users, len(self.user_ids)))
            out_users = []
            for uid in picked:
                record = t.users.objects[uid]
                out_users.append(
                    {
                        **{k: v for k, v in record.items() if not k.startswith("_")},
                        "manager": record["_manager"],
                    }
                )
            out_groups = {
                gid: {
                    "displayName": t.groups.objects[gid]["displayName"],
                    "members": [m for m, typ in t.members(gid) if typ == USER_TYPE],
                }
                for gid in rng.sample(self.group_ids, min(groups, len(self.group_ids)))
            }
        return {"users": out_users, "groups": out_groups}

    def apply_changes(self, count: int, seed: int) -> dict:
        """``count`` changes, in these shares: attribute updates 65 %, manager changes 5 %,
        disables 2 %, membership adds 12 %, membership removes 12 %, new assigned users 4 %.
        Every change touches a different user (or group/user pair), so each can be checked."""
        rng = random.Random(seed)
        t = self.tenant
        n_new = max(1, count * 4 // 100)
        n_disable = max(1, count * 2 // 100)
        n_manager = max(1, count * 5 // 100)
        n_add = n_remove = max(1, count * 12 // 100)
        n_attr = count - n_new - n_disable - n_manager - n_add - n_remove
        used: set[str] = set()

        def fresh_user() -> str:
            for _ in range(10_000):
                uid = rng.choice(self.user_ids)
                if uid not in used and uid in t.users.objects:
                    used.add(uid)
                    return uid
            raise RuntimeError("no unused user left")

        out: dict = {
            "attributes": [],
            "managers": [],
            "disabled": [],
            "member_adds": [],
            "member_removes": [],
            "new_users": [],
        }
        started = time.perf_counter()
        with t.lock:
            for _ in range(n_attr):
                uid = fresh_user()
                old = t.users.objects[uid]
                choice = rng.randrange(3)
                if choice == 0:
                    new = {"jobTitle": f"{rng.choice(TITLES)} {self.changes_applied}"}
                elif choice == 1:
                    new = {"department": f"{rng.choice(DEPARTMENTS)} {self.changes_applied}"}
                else:
                    surname = f"{old['surname']}-{self.changes_applied}"
                    new = {"surname": surname, "displayName": f"{old['givenName']} {surname}"}
                t.update_user(uid, **new)
                out["attributes"].append({"id": uid, "set": new})
                self.changes_applied += 1
            for _ in range(n_manager):
                uid = fresh_user()
                manager = rng.choice(self.user_ids)
                while manager in (uid, t.users.objects[uid]["_manager"]):
                    manager = rng.choice(self.user_ids)
                t.update_user(uid, manager=manager)
                out["managers"].append({"id": uid, "manager": manager})
                self.changes_applied += 1
            for _ in range(n_disable):
                uid = fresh_user()
                if not t.users.objects[uid]["accountEnabled"]:
                    used.discard(uid)
                    uid = fresh_user()
                t.update_user(uid, accountEnabled=False)
                out["disabled"].append(uid)
                self.changes_applied += 1
            pairs: set[tuple[str, str]] = set()
            for _ in range(n_add):
                for _ in range(1000):
                    gid, uid = rng.choice(self.group_ids), rng.choice(self.user_ids)
                    members = {m for m, _ in t.members(gid)}
                    if (gid, uid) not in pairs and uid not in members:
                        break
                pairs.add((gid, uid))
                t.add_members(gid, uid)
                self.group_count[uid] += 1
                out["member_adds"].append([gid, uid])
                self.changes_applied += 1
            for _ in range(n_remove):
                # only members that stay in scope: directly assigned or in another group
                for _ in range(1000):
                    gid = rng.choice(self.group_ids)
                    members = [m for m, _ in t.members(gid)]
                    uid = rng.choice(members) if members else ""
                    stays = uid in self.direct or self.group_count[uid] > 1
                    if uid and stays and (gid, uid) not in pairs:
                        break
                pairs.add((gid, uid))
                t.remove_members(gid, uid)
                self.group_count[uid] -= 1
                out["member_removes"].append([gid, uid])
                self.changes_applied += 1
            for k in range(n_new):
                n = len(self.user_ids)
                given, surname = rng.choice(GIVEN), rng.choice(SURNAMES)
                nick = f"{given}.{surname}{n}".lower()
                user = t.add_user(
                    id=str(uuid.uuid4()),
                    mailNickname=nick,
                    userPrincipalName=f"{nick}@contoso.test",
                    mail=f"{nick}@contoso.test",
                    displayName=f"{given} {surname}",
                    givenName=given,
                    surname=surname,
                    department=rng.choice(DEPARTMENTS),
                    employeeId=f"N{seed % 1000:03d}{k:05d}",
                    jobTitle=rng.choice(TITLES),
                )
                self.user_ids.append(user["id"])
                self.direct.add(user["id"])
                t.assignments = [*t.assignments, self._assignment(user["id"], "User")]
                out["new_users"].append(
                    {name: v for name, v in user.items() if not name.startswith("_")}
                )
                self.changes_applied += 1
        out["count"] = sum(len(v) for v in out.values())
        out["apply_seconds"] = round(time.perf_counter() - started, 3)
        return out


class ControlledGraph:
    """FakeGraph plus the ``/_bench/*`` control routes."""

    def __init__(self, fake: FakeGraph, bench: BenchTenant, token: str) -> None:
        self.fake = fake
        self.bench = bench
        self.token = token
        self.requests_seen = 0

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_bench/"):
            return self.fake(environ, start_response)
        request = Request(environ)
        if request.headers.get("X-Bench-Control") != self.token:
            return Response(b"forbidden", 403)(environ, start_response)
        body = orjson.loads(request.get_data() or b"{}")
        if path == "/_bench/summary":
            result = self.bench.summary()
        elif path == "/_bench/sample":
            result = self.bench.sample(body.get("users", 100), body.get("groups", 20), body["seed"])
        elif path == "/_bench/changes":
            result = self.bench.apply_changes(body.get("count", 1000), body["seed"])
        elif path == "/_bench/requests":
            result = self._requests()
        else:
            return Response(b"no such route", 404)(environ, start_response)
        return Response(orjson.dumps(result), 200, content_type="application/json")(
            environ, start_response
        )

    def _requests(self) -> dict:
        """Graph requests by route since the last call (the request log is then dropped)."""
        with self.fake.lock:
            recorded, self.fake.requests = self.fake.requests, []
        by_route: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        for r in recorded:
            parts = r.path.split("/")
            if len(parts) > 3 and parts[2] == "groups" and parts[3] not in ("delta", "delta()"):
                route = "groups/{id}" + ("/members" if "members" in parts else "")
            elif len(parts) > 3 and parts[2] == "users" and parts[3] not in ("delta", "delta()"):
                route = "users/{id}"
            elif len(parts) > 3 and parts[2] == "servicePrincipals":
                route = "servicePrincipals/{id}/appRoleAssignedTo"
            else:
                route = "/".join(parts[2:]) if r.path.startswith("/v1.0") else "identity"
            by_route[route] += 1
            statuses[str(r.status)] += 1
        return {"total": len(recorded), "by_route": dict(by_route), "status": dict(statuses)}


def _write_ready(path: Path, ready: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(ready))
    tmp.rename(path)


def _serve_gunicorn(app, tls: ServerTLS, max_seconds: float, on_ready) -> None:
    """Serve ``app`` with gunicorn (gthread, one worker: one tenant) over TLS, with HTTP/1.1
    keep-alive as Graph has (werkzeug's server closes every connection). Built before the
    fork, so the worker inherits the tenant. Stops on SIGTERM/SIGINT (the arbiter's own
    handling), when the parent goes away, or after ``max_seconds``."""
    from gunicorn.app.base import BaseApplication

    port = free_port()
    parent = os.getppid()

    def watch(server) -> None:
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline and os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    def when_ready(server) -> None:
        threading.Thread(target=watch, args=(server,), daemon=True).start()

    def post_worker_init(worker) -> None:
        on_ready(f"https://127.0.0.1:{port}")

    class Server(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": f"127.0.0.1:{port}",
                "workers": 1,
                "worker_class": "gthread",
                "threads": 4,
                "keepalive": 75,
                "timeout": 600,
                "graceful_timeout": 5,
                "certfile": str(tls.cert_path),
                "keyfile": str(tls.key_path),
                "loglevel": "warning",
                "when_ready": when_ready,
                "post_worker_init": post_worker_init,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    Server().run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.graph_fake")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--groups", type=int, required=True)
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--tls-dir", type=Path, required=True)
    p.add_argument("--ready", type=Path, required=True)
    p.add_argument("--max-seconds", type=float, default=4 * 3600)
    p.add_argument("--control-token", default=os.environ.get("BENCH_CONTROL_TOKEN", ""))
    p.add_argument(
        "--server",
        choices=("werkzeug", "gunicorn"),
        default="werkzeug",
        help="werkzeug: tests.fakes.graph_tls.serve_tls, a new connection per request; "
        "gunicorn: gthread, HTTP/1.1 keep-alive",
    )
    args = p.parse_args(argv)
    if not args.control_token:
        p.error("a control token is required (--control-token or BENCH_CONTROL_TOKEN)")

    started = time.perf_counter()
    bench = BenchTenant(args.users, args.groups, args.seed)
    build_s = time.perf_counter() - started
    rng = random.Random(args.seed + 1)
    fake = FakeGraph(
        tenant_id=_uuid(rng), client_id=_uuid(rng), client_secret=_uuid(rng), tenant=bench.tenant
    )
    tls = ServerTLS(
        args.tls_dir / "ca.pem", args.tls_dir / "server.pem", args.tls_dir / "server-key.pem"
    )
    app = ControlledGraph(fake, bench, args.control_token)

    def ready(url: str) -> None:
        fake.base_url = url
        _write_ready(
            args.ready,
            {
                "url": url,
                "graph_url": fake.graph_url,
                "tenant_id": fake.tenant_id,
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "service_principal_id": bench.tenant.service_principal_id,
                "ca_path": str(tls.ca_path),
                "build_seconds": round(build_s, 2),
                "server": args.server,
                "summary": bench.summary(),
            },
        )

    if args.server == "gunicorn":
        _serve_gunicorn(app, tls, args.max_seconds, ready)
        return 0

    stop = threading.Event()

    def on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    with serve_tls(app, tls.ssl_context()) as url:
        ready(url)
        deadline = time.monotonic() + args.max_seconds
        while not stop.is_set() and time.monotonic() < deadline:
            if os.getppid() != parent:  # the benchmark died without stopping us
                break
            stop.wait(PARENT_CHECK_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
