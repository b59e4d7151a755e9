"""py-spy on the delivery worker: where its wall-clock time goes, per thread.

The worker is one RQ job loop (main thread) plus the dispatcher thread. Its throughput is
bounded by the main thread's wall time, most of which is spent waiting on Redis and on the
targets, so samples are taken with ``--idle`` (waiting counts) and split by thread.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

from bench import profiling
from bench.profiling import py_spy, shares

RATE = 200
"""Samples per second."""


def start(pid: int, duration: float, output: Path) -> subprocess.Popen:
    exe = py_spy()
    output.parent.mkdir(parents=True, exist_ok=True)
    args = [
        exe, "record",
        "--pid", str(pid),
        "--idle",
        "--threads",
        "--nonblocking",
        "--rate", str(RATE),
        "--duration", str(max(1, round(duration))),
        "--format", "raw",
        "--output", str(output),
    ]  # fmt: skip
    return subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    """Ask py-spy to write what it has (SIGINT), then make sure it is gone."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def summarise(collapsed: Path, top: int = 30) -> dict:
    """Per thread: sample counts; for the job thread, inclusive and self shares."""
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    jobs = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = profiling.frames(stack)
        if any("bridge/delivery/dispatcher.py:run" in f for f in frames):
            threads["dispatcher"] += n
            continue
        if not any(f.startswith("rq/") for f in frames):
            threads["other (RQ pub/sub listener, idle)"] += n
            continue
        threads["job loop (main thread)"] += n
        jobs += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n

    own_code = ("bridge/", "workers/")
    return {
        "samples_by_thread": dict(threads),
        "job_loop_samples": jobs,
        "bridge_inclusive_pct": shares(inclusive, jobs, lambda f: f.startswith(own_code), top),
        "all_inclusive_pct": shares(inclusive, jobs, lambda f: True, top),
        "self_pct": shares(own, jobs, lambda f: True, top),
    }
