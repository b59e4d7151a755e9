"""Redis's own instructions per SCIM request: redis-server counted by callgrind.

    python -m bench.redis_cpu [--requests 200] [--scenarios create,lookup,...] [--save NAME]

The web tier's cost is :mod:`bench.request_cpu`; this is the other part of a request's CPU,
what Redis spends on it (the Lua scripts, their commands, the AOF), which on a 2-core
machine comes out of the same cores. A private ``redis-server`` (the binary and settings
``EmbeddedRedis`` runs: AOF ``everysec``, hashes compact up to 64 fields) runs under
``valgrind --tool=callgrind`` with instrumentation off; the app from ``create_app()``
drives it in this process with request_cpu's scenarios (the same Entra-shaped requests);
instrumentation is switched on (``callgrind_control``)
only for the N measured requests of each scenario and their audit entries, and the
counts are dumped at the end of it. Instructions repeat from run to run, whatever else the
machine does, so a change to a script is measured by two runs, before and after.

``--preload N`` users (2,000 by default) are in the directory before any scenario: a
tenant's indexes are then hash tables, as in production, rather than the small listpacks
of an empty directory (whose linear lookups would be counted instead).

``--save NAME`` records the figures under ``NAME`` in ``bench/results/redis_cpu.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench import request_cpu
from bench.callgrind import dump_total
from bench.common import save_run
from bridge.runtime.embedded_redis import EmbeddedRedis, free_port

RESULTS = Path(__file__).parent / "results" / "redis_cpu.json"
WARM_UP = 20
"""Requests (cycles for ``mixed``) of each scenario sent before it is counted."""


def start_redis(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """redis-server as EmbeddedRedis runs it, under callgrind, instrumentation off until
    asked for; ``REDIS_EXTRA`` (an environment variable) adds settings to try."""
    server = EmbeddedRedis(folder, port, appendonly=True).command()
    extra = os.environ.get("REDIS_EXTRA", "").split()
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={folder / 'callgrind.out'}", "--compress-strings=no",
        *server, *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = redis.Redis(port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + 60
    while True:
        try:
            probe.ping()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("redis-server did not start under valgrind") from None
            time.sleep(0.2)
        finally:
            probe.close()


def control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def measure(names: list[str], requests: int, preload: int) -> dict[str, float]:
    """Redis instructions per request of each scenario."""
    found: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        server = start_redis(folder, port)
        try:
            _app, bench, audit = request_cpu.build_app(f"redis://127.0.0.1:{port}/0")
            if preload:
                bench.seed_users(bench.tags("preload", preload))
            for name in names:
                per = request_cpu.MIXED_REQUESTS if name == "mixed" else 1
                calls = max(1, requests // per)
                send = request_cpu.PREPARE[name](bench, (calls + WARM_UP) * per)
                for i in range(WARM_UP):
                    send(i)
                audit.flush()
                control(server.pid, "--zero")
                control(server.pid, "--instr=on")
                for i in range(WARM_UP, WARM_UP + calls):
                    send(i)
                audit.flush()
                control(server.pid, f"--dump={name}")
                control(server.pid, "--instr=off")
                found[name] = _dumped(folder, name) / (calls * per)
        finally:
            server.terminate()
            server.wait(timeout=60)
    return found


def _dumped(folder: Path, name: str) -> int:
    """The Ir total of the dump named ``name`` (callgrind writes it as it is asked)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for dump in folder.glob("callgrind.out.*"):
            text = dump.read_text(errors="replace")
            if f"Trigger: Client Request: {name}" in text or f"dump {name}" in text:
                return dump_total(dump)[1]
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no dump for {name}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests", type=int, default=200, help="counted requests per scenario")
    p.add_argument("--scenarios", default=",".join(request_cpu.SCENARIOS))
    p.add_argument("--preload", type=int, default=2000, help="users in the directory first")
    p.add_argument("--save", metavar="NAME", help=f"record the figures in {RESULTS.name}")
    args = p.parse_args()
    names = [s for s in args.scenarios.split(",") if s]
    unknown = set(names) - set(request_cpu.SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        p.error("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    figures = measure(names, args.requests, args.preload)
    for name in names:
        print(f"{name:14s} redis_ir_per_request {figures[name]:>12,.1f}")
    if args.save:
        what = (__doc__ or "").splitlines()[0]
        save_run(
            RESULTS,
            args.save,
            {"redis_ir_per_request": figures},
            what,
            requests_per_scenario=args.requests,
            preload=args.preload,
            redis_settings=os.environ.get("REDIS_EXTRA", "") or "as EmbeddedRedis",
        )


if __name__ == "__main__":
    main()
