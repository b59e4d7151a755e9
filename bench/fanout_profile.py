"""py-spy on the delivery worker: where its wall-clock time goes, per thread.

The worker is one RQ job loop (main thread) plus the dispatcher thread. Its throughput is
bounded by the main thread's wall time, most of which is spent waiting on Redis and on the
targets, so samples are taken with ``--idle`` (waiting counts) and split by thread.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

RATE = 200
"""Samples per second."""

MARKERS = ("site-packages/", "/work/main/", "python3.11/")


def start(pid: int, duration: float, output: Path) -> subprocess.Popen:
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy==0.3.14")
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


def _frame(text: str) -> str | None:
    name, _, where = text.partition(" (")
    if not where:
        return None
    path, _, line = where.rstrip(")").rpartition(":")
    for marker in MARKERS:
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{name}"


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
        parts = stack.split(";")
        frames = [f for f in (_frame(p) for p in parts) if f]
        if any("bridge/events.py:run" in f for f in frames):
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

    def share(counter: Counter[str], keep) -> list[tuple[str, float]]:
        if not jobs:
            return []
        return [(f, round(100 * c / jobs, 1)) for f, c in counter.most_common() if keep(f)][:top]

    return {
        "samples_by_thread": dict(threads),
        "job_loop_samples": jobs,
        "bridge_inclusive_pct": share(inclusive, lambda f: f.startswith(("bridge/", "workers/"))),
        "all_inclusive_pct": share(inclusive, lambda f: True),
        "self_pct": share(own, lambda f: True),
    }
