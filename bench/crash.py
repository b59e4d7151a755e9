"""Crash benchmark: what a killed worker or a killed Redis costs, with default settings.

    python -m bench.crash            # 1,200 users per scenario
    python -m bench.crash --quick    # 400 users per scenario

* **worker SIGKILL**: users are created towards a webhook target that answers in 50 ms;
  once a third of them have arrived, the delivery worker's whole process is SIGKILLed and
  a new one started. Figures: how long after the kill deliveries resumed and all arrived,
  how many never did (lost), how many arrived twice (harmless: deliveries converge).
* **Redis kill -9**: users are created at 100/s; Redis (AOF, ``appendfsync everysec``) is
  SIGKILLed and started again on its data 3 s later while the writes go on. Figures:
  acknowledged writes lost, stored users never delivered, whether the original workers
  lived through it, and how long after the restart the target had everyone.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.common import stop_on_signals
from bench.fanout_drive import Receipts, paced_creates
from bench.live import PREFIX, LiveBridge

RESULTS = Path(__file__).resolve().parent / "results" / "crash.json"
ANSWER_SECONDS = 0.05
REDIS_OUTAGE_SECONDS = 3.0
WRITE_RATE = 100.0
CONVERGE_TIMEOUT = 120.0
"""Seconds after the fault that the target may take to have every stored user."""


def _arrived(receipts: Receipts, names: set[str]) -> int:
    receipts.poll()
    return receipts.received("user.created", names)


def worker_kill(users: int, workdir: Path) -> dict:
    bridge = LiveBridge(workdir)
    try:
        bridge.start()
        port, sink = bridge.sink("hook", "webhook", "--delay", str(ANSWER_SECONDS))
        bridge.add_target("hook", "webhook", f"http://127.0.0.1:{port}/hook")
        tags = [f"kill{n}" for n in range(users)]
        writes = paced_creates(bridge.port, bridge.token, tags, rate=400.0)
        names = {n for n, s in zip(writes.user_names, writes.status, strict=True) if s == 201}
        while _arrived(sink, names) < len(names) // 3:
            time.sleep(0.01)
        bridge.kill_workers()
        killed_at = time.time()
        before = _arrived(sink, names)
        bridge.start_workers()
        deadline = time.monotonic() + CONVERGE_TIMEOUT
        while _arrived(sink, names) < len(names) and time.monotonic() < deadline:
            time.sleep(0.05)
        times = sorted(sink.times("user.created").values())
        after = [t for t in times if t > killed_at + 0.2]  # in flight at the kill: not resumed
        return {
            "users": len(names),
            "delivered_before_kill": before,
            "lost": len(names) - _arrived(sink, names),
            "duplicates": sink.duplicates.get("user.created", 0),
            "resumed_after_s": round(after[0] - killed_at, 2) if after else None,
            "all_delivered_after_s": round(times[-1] - killed_at, 2) if times else None,
        }
    finally:
        bridge.stop()


def redis_kill(seconds: float, workdir: Path) -> dict:
    bridge = LiveBridge(workdir)
    try:
        bridge.start()
        port, sink = bridge.sink("hook", "webhook")
        bridge.add_target("hook", "webhook", f"http://127.0.0.1:{port}/hook")
        pids = [w.pid for w in bridge.workers]
        restarted_at = [math.nan]

        def outage() -> None:
            time.sleep(seconds / 3)
            bridge.redis_server.kill()
            time.sleep(REDIS_OUTAGE_SECONDS)
            bridge.redis_server.start()
            restarted_at[0] = time.time()

        fault = threading.Thread(target=outage)
        fault.start()
        tags = [f"redis{n}" for n in range(int(WRITE_RATE * seconds))]
        writes = paced_creates(bridge.port, bridge.token, tags, WRITE_RATE, grace=30.0)
        fault.join()
        acked = {n for n, s in zip(writes.user_names, writes.status, strict=True) if s == 201}
        index = bridge.client.hkeys(f"{PREFIX}:idx:user:userName")
        stored = {k.decode() for k in index}
        deadline = time.monotonic() + CONVERGE_TIMEOUT
        names = {n.casefold() for n in acked}
        while _arrived(sink, acked) < len(acked) and time.monotonic() < deadline:
            time.sleep(0.05)
        times = sorted(sink.times("user.created").values())
        return {
            "writes_sent": len(tags),
            "writes_acknowledged": len(acked),
            "writes_refused_during_outage": sum(1 for s in writes.status if s != 201),
            "acknowledged_lost": len(names - stored),
            "stored_undelivered": len(acked) - _arrived(sink, acked),
            "workers_survived": all(w.alive() for w in bridge.workers)
            and [w.pid for w in bridge.workers] == pids,
            "all_delivered_after_restart_s": round(times[-1] - restarted_at[0], 2)
            if times
            else None,
        }
    finally:
        bridge.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="400 users per scenario")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    stop_on_signals()
    users = 400 if args.quick else 1200
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        kill = worker_kill(users, Path(tmp) / "kill")
    print(
        f"worker SIGKILL after {kill['delivered_before_kill']} of {kill['users']} deliveries: "
        f"resumed after {kill['resumed_after_s']} s, all delivered after "
        f"{kill['all_delivered_after_s']} s, lost {kill['lost']}, duplicates {kill['duplicates']}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        crash = redis_kill(users / WRITE_RATE, Path(tmp) / "redis")
    print(
        f"Redis kill -9 + restart after {REDIS_OUTAGE_SECONDS:g} s at {WRITE_RATE:g} writes/s: "
        f"{crash['writes_acknowledged']} acknowledged, lost {crash['acknowledged_lost']}, "
        f"stored but undelivered {crash['stored_undelivered']}, workers survived "
        f"{crash['workers_survived']}, all delivered {crash['all_delivered_after_restart_s']} s "
        "after the restart",
        flush=True,
    )
    document = {
        "benchmark": "crash",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "worker_sigkill": kill,
        "redis_kill": crash,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
