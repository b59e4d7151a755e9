"""Just-in-time provisioning benchmark: SAML sign-in → directory commit → target receipt.

    python -m bench.jit               # 15 s at 20 sign-ins/s
    python -m bench.jit --quick       # 5 s at 20 sign-ins/s
    python -m bench.jit --rate 50 --duration 10

The stack is the fan-out benchmark's (bench/fanout.py ``Stack``): AOF Redis, the bridge
under gunicorn as in production, a webhook sink and a SCIM sink as targets, one delivery
worker. A SAML IdP is configured with its own key; every sign-in is SP-initiated (its
AuthnRequest is fetched from ``/sso/saml/bench/login`` beforehand, untimed) and its
Entra-shaped, signed Response is posted to the ACS at a fixed rate. Measured per sign-in,
from the moment the POST is sent: the ACS answer, the directory commit (the time of the
change-stream entry that announced the new user, read live; Redis's clock, in ms) and the
first receipt at each sink. Then 100 sign-ins one after another through an in-process
app (no HTTP server): the ACS's own cost, validation and directory write. Results go to
bench/results/jit.json.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import sys
import tempfile
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import redis
from lxml import etree

from bench.common import run_main
from bench.fanout import KIND, PREFIX, SCIM, WEBHOOK, Stack, ms_summary
from bridge.sso.idps import IdpStore
from bridge.targets.secrets import SecretBox
from tests.sso.saml_idp import TestIdp, User, encode

RESULTS = Path(__file__).resolve().parent / "results" / "jit.json"
IDP = "bench"
PUBLIC_URL = "https://scim.bench.example"
SP_ENTITY_ID = f"{PUBLIC_URL}/sso/saml/{IDP}"
ACS_URL = f"{SP_ENTITY_ID}/acs"
SENDERS = 4
"""Client threads, each with its own keep-alive connection: a slow answer does not hold up
the next sign-in's scheduled start."""

TARGET_COMMIT_P50_MS = 20.0
TARGET_RECEIPT_P50_MS = 150.0
DELIVERY_GRACE = 30.0


def request_ids(port: int, n: int) -> list[str]:
    """Start ``n`` SP-initiated sign-ins; the ids of the AuthnRequests the bridge issued."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ids = []
    try:
        for _ in range(n):
            conn.request("GET", f"/sso/saml/{IDP}/login")
            answer = conn.getresponse()
            answer.read()
            if answer.status != 302:
                raise RuntimeError(f"login answered {answer.status}")
            query = parse_qs(urlsplit(answer.getheader("Location") or "").query)
            xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
            ids.append(etree.fromstring(xml).get("ID"))
    finally:
        conn.close()
    return ids


def prepare(idp: TestIdp, port: int, run: str, n: int) -> list[tuple[str, bytes]]:
    """(userName, form body) of ``n`` signed sign-ins answering fresh AuthnRequests."""
    out = []
    for i, rid in enumerate(request_ids(port, n)):
        user = User(upn=f"{run}-{i}@contoso.com")
        response = idp.response(user, acs_url=ACS_URL, audience=SP_ENTITY_ID, in_response_to=rid)
        out.append((user.upn, urlencode({"SAMLResponse": encode(response)}).encode()))
    return out


def paced_sign_ins(port: int, sign_ins: list[tuple[str, bytes]], rate: float) -> dict:
    """POST each sign-in at its scheduled time; per userName: sent, answered, status."""
    start = time.time() + 0.2
    counter = itertools.count()
    results: dict[str, dict] = {}
    lock = threading.Lock()

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            while (i := next(counter)) < len(sign_ins):
                name, body = sign_ins[i]
                time.sleep(max(0.0, start + i / rate - time.time()))
                sent = time.time()
                conn.request("POST", f"/sso/saml/{IDP}/acs", body=body, headers=headers)
                answer = conn.getresponse()
                answer.read()
                done = time.time()
                with lock:
                    results[name] = {"sent": sent, "answered": done, "status": answer.status}
        finally:
            conn.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class StreamWatch(threading.Thread):
    """Reads the change stream as it grows: user id → time (s, Redis's clock) of the entry
    that announced its creation. Read live because the dispatcher trims what it took."""

    def __init__(self, url: str) -> None:
        super().__init__(name="stream-watch", daemon=True)
        self.client: Any = redis.Redis.from_url(url)
        self.created: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        last = "$"
        try:
            while not self.stop.is_set():
                reply = self.client.xread({f"{PREFIX}:changes": last}, block=200, count=500)
                for _, entries in reply:
                    for entry_id, fields in entries:
                        last = entry_id
                        if fields.get(b"op") == b"created" and fields.get(b"kind") == b"user":
                            ms = int(entry_id.split(b"-")[0])
                            self.created[fields[b"id"].decode()] = ms / 1000
        finally:
            self.client.close()

    def finish(self) -> None:
        self.stop.set()
        self.join(5)


def commit_times(stack: Stack, watch: StreamWatch, names: set[str]) -> dict[str, float]:
    """userName → when the directory committed (announced) its creation."""
    client: Any = stack.client
    assert client is not None
    out = {}
    for name in names:
        rid = client.hget(f"{PREFIX}:idx:user:userName", name.casefold())
        if rid is not None and rid.decode() in watch.created:
            out[name] = watch.created[rid.decode()]
    return out


def service_times(stack: Stack, idp: TestIdp, n: int) -> dict:
    """The ACS's own cost: ``n`` sign-ins one after another through an in-process app
    (Flask test client: no HTTP server, no network), each timed from POST to answer."""
    from app import create_app
    from bridge.runtime.config import Settings

    app = create_app(Settings.from_env({**stack.env}))
    client = app.test_client()
    try:
        times = []
        for i in range(n):
            answer = client.get(f"/sso/saml/{IDP}/login")
            query = parse_qs(urlsplit(answer.headers["Location"]).query)
            xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
            user = User(upn=f"inproc-{i}@contoso.com")
            response = idp.response(
                user,
                acs_url=ACS_URL,
                audience=SP_ENTITY_ID,
                in_response_to=etree.fromstring(xml).get("ID"),
            )
            form = {"SAMLResponse": encode(response)}
            started = time.perf_counter()
            answer = client.post(f"/sso/saml/{IDP}/acs", data=form)
            times.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise RuntimeError(f"in-process sign-in answered {answer.status_code}")
        return ms_summary(times)
    finally:
        app.extensions["bridge"].redis.close()


def run_benchmark(args: argparse.Namespace) -> dict:
    idp = TestIdp()
    with tempfile.TemporaryDirectory(prefix="bench-jit-") as tmp, Stack(Path(tmp)) as stack:
        assert stack.client is not None and stack.bridge is not None
        store = IdpStore(stack.client, PREFIX, SecretBox([stack.env["BRIDGE_SECRET_KEYS"]]))
        store.create(
            {
                **idp.config(name=IDP),
                "idp_initiated": False,
                "update": "each_login",
                "match_username": True,
                "clock_skew_seconds": 120,
                "groups": False,
                "enabled": True,
                "sp_entity_id": None,
                "tenant_id": None,
            }
        )
        stack.start_worker()
        port = stack.bridge.port
        warm = prepare(idp, port, "warm", 20)
        paced_sign_ins(port, warm, 20.0)
        if not stack.wait_delivered({n for n, _ in warm}, 60.0, stack.check_alive):
            raise RuntimeError("warm-up deliveries did not arrive")
        time.sleep(1.0)

        n = round(args.rate * args.duration)
        sign_ins = prepare(idp, port, "jit", n)
        watch = StreamWatch(stack.redis_server.url)
        watch.start()
        time.sleep(0.3)
        results = paced_sign_ins(port, sign_ins, args.rate)
        ok = {name for name, r in results.items() if r["status"] == 200}
        stack.wait_delivered(ok, DELIVERY_GRACE, stack.check_alive)
        watch.finish()
        commits = commit_times(stack, watch, ok)
        answered = [r["answered"] - r["sent"] for r in results.values() if r["status"] == 200]
        committed = [commits[name] - results[name]["sent"] for name in ok if name in commits]
        receipts = {}
        for mode in (WEBHOOK, SCIM):
            times = stack.receipts[mode].times(KIND[mode])
            receipts[mode] = ms_summary(
                [times[name] - results[name]["sent"] for name in ok if name in times]
            )
        in_process = service_times(stack, idp, 100)
        statuses: dict[str, int] = {}
        for r in results.values():
            statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "rate_per_s": args.rate,
            "duration_s": args.duration,
            "sign_ins": n,
            "statuses": statuses,
            "acs_answer": ms_summary(answered),
            "commit": ms_summary(committed),
            "in_process_acs": in_process,
            "receipt": receipts,
            "targets": {
                "commit_p50_ms": TARGET_COMMIT_P50_MS,
                "webhook_receipt_p50_ms": TARGET_RECEIPT_P50_MS,
            },
        }


def print_report(results: dict) -> None:
    print(f"JIT sign-ins at {results['rate_per_s']}/s for {results['duration_s']} s")
    print(f"  statuses: {results['statuses']}")
    rows = [
        ("ACS answer", results["acs_answer"]),
        ("directory commit", results["commit"]),
        ("webhook receipt", results["receipt"][WEBHOOK]),
        ("SCIM receipt", results["receipt"][SCIM]),
        ("in-process ACS", results["in_process_acs"]),
    ]
    for label, s in rows:
        if s.get("n"):
            print(
                f"  {label:<17} n={s['n']:<5} p50 {s['p50_ms']:>7} ms  p90 {s['p90_ms']:>7} ms"
                f"  p99 {s['p99_ms']:>7} ms  max {s['max_ms']:>7} ms"
            )
        else:
            print(f"  {label:<17} nothing measured")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=20.0, help="sign-ins per second")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds")
    parser.add_argument("--quick", action="store_true", help="5 s")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 5.0
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main(parse_args(argv), run_benchmark, print_report)


if __name__ == "__main__":
    sys.exit(main())
