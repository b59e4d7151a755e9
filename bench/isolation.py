"""Isolation benchmark: a fast webhook target beside a slow target and one that hangs.

    python -m bench.isolation            # 20 s per scenario at 100 writes/s
    python -m bench.isolation --quick    # 8 s per scenario

Each scenario starts a fresh bridge as ``serve.sh`` runs it (AOF Redis, the web tier, one
delivery worker with its default lanes) and a fast webhook sink; some add a SCIM target
that answers every request after 1.5 s, or a webhook target whose TCP connects hang (a
full accept queue). Entra-shaped users are created at a steady rate; the figure is, for
the fast target only, the time from each SCIM write's response to its receipt there.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.common import stop_on_signals
from bench.fanout import ms_summary
from bench.fanout_drive import (
    paced_creates,
    wait_for,
)
from bench.live import LiveBridge
from tests.fakes.blackhole import Blackhole

RESULTS = Path(__file__).resolve().parent / "results" / "isolation.json"
PREFIX = "bridge"
RATE = 100.0
SLOW_SECONDS = 1.5
TARGET_P50_MS, TARGET_P99_MS = 50.0, 300.0
DELIVERY_GRACE = 30.0
"""Seconds after the last write that the fast target's deliveries may still take."""

SCENARIOS = {
    "alone": (),
    "beside a slow SCIM target (1.5 s per answer)": ("slow",),
    "beside a target whose connects hang": ("hang",),
    "beside both": ("slow", "hang"),
}


def run_scenario(extras: tuple[str, ...], seconds: float, workdir: Path) -> dict:
    bridge = LiveBridge(workdir)
    with ExitStack() as cleanup:
        cleanup.callback(bridge.stop)
        bridge.start()
        port, fast = bridge.sink("fast", "webhook")
        bridge.add_target("fast", "webhook", f"http://127.0.0.1:{port}/hook")
        if "slow" in extras:
            slow_port, _ = bridge.sink("slow", "scim", "--delay", str(SLOW_SECONDS))
            bridge.add_target("slow", "scim", f"http://127.0.0.1:{slow_port}/scim/v2")
        if "hang" in extras:
            hole = Blackhole()
            cleanup.callback(hole.close)
            bridge.add_target("hanging", "webhook", hole.url + "/hook")
        warm = paced_creates(bridge.port, bridge.token, [f"warm{n}" for n in range(20)], 20.0)
        wait_for([(fast, "user.created")], set(warm.user_names), DELIVERY_GRACE)
        tags = [f"iso{n}" for n in range(int(RATE * seconds))]
        writes = paced_creates(bridge.port, bridge.token, tags, RATE)
        names = set(writes.user_names)
        wait_for([(fast, "user.created")], names, DELIVERY_GRACE)
        received = fast.times("user.created")
        delays = [  # the warm-up's users are not counted
            received[name] - at
            for name, at, status in zip(
                writes.user_names, writes.response_at, writes.status, strict=True
            )
            if status == 201 and name in received
        ]
        acked = sum(1 for s in writes.status if s == 201)
        return {
            "writes_acknowledged": acked,
            "fast_target_missing": acked - len(delays),
            "fast_target_duplicates": fast.duplicates.get("user.created", 0),
            "write_to_receipt": ms_summary(delays),
            "write_errors": writes.errors[:5],
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.isolation", description=__doc__.split("\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="8 s per scenario instead of 20 s")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    stop_on_signals()
    seconds = 8.0 if args.quick else 20.0
    results = {}
    print(f"fast webhook target, {RATE:g} writes/s for {seconds:g} s per scenario", flush=True)
    print(f"{'scenario':<48} {'p50 ms':>8} {'p99 ms':>8} {'missing':>8}")
    for label, extras in SCENARIOS.items():
        with tempfile.TemporaryDirectory(prefix="bench-isolation-") as tmp:
            result = run_scenario(extras, seconds, Path(tmp))
        results[label] = result
        lat = result["write_to_receipt"]
        print(
            f"{label:<48} {lat.get('p50_ms', float('nan')):>8.1f} "
            f"{lat.get('p99_ms', float('nan')):>8.1f} {result['fast_target_missing']:>8}",
            flush=True,
        )
    worst = max(r["write_to_receipt"].get("p99_ms", 1e9) for r in results.values())
    worst50 = max(r["write_to_receipt"].get("p50_ms", 1e9) for r in results.values())
    print(
        f"targets: p50 <= {TARGET_P50_MS:g} ms {'✓' if worst50 <= TARGET_P50_MS else '✗'}, "
        f"p99 <= {TARGET_P99_MS:g} ms {'✓' if worst <= TARGET_P99_MS else '✗'}"
    )
    document = {
        "benchmark": "isolation",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rate_per_s": RATE,
        "seconds_per_scenario": seconds,
        "slow_target_seconds": SLOW_SECONDS,
        "scenarios": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
