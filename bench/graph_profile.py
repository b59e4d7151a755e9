"""py-spy around a Graph resync worker process, and a summary of where its time goes.

The worker is started *under* py-spy (``py-spy record -- python -m bench.graph_worker``),
so no ptrace permission on a sibling process is needed. It is one thread running one
asyncio loop; samples are taken with ``--idle``, so the shares are of wall-clock time,
waiting on the fake Graph and on Redis included.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench import profiling
from bench.profiling import py_spy, shares

RATE = 100
"""Samples per second."""

OWN_CODE = ("bridge/", "workers/")


def command(output: Path, worker_args: list[str]) -> list[str]:
    """``py-spy record`` running ``worker_args`` (a full command line) as its child."""
    exe = py_spy()
    output.parent.mkdir(parents=True, exist_ok=True)
    return [
        exe, "record",
        "--idle",
        "--rate", str(RATE),
        "--format", "raw",
        "--output", str(output),
        "--",
        *worker_args,
    ]  # fmt: skip


def summarise(collapsed: Path, top: int = 30) -> dict:
    """Inclusive shares (own code, and everything) and self shares, of the job's samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = profiling.frames(stack)
        # keep the job only: imports and context set-up come before it
        if not any(f == "workers/reconcile.py:resync" for f in frames):
            continue
        n = int(count)
        total += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n

    return {
        "samples": total,
        "rate_per_s": RATE,
        "own_inclusive_pct": shares(inclusive, total, lambda f: f.startswith(OWN_CODE), top),
        "all_inclusive_pct": shares(inclusive, total, lambda f: True, top),
        "self_pct": shares(own, total, lambda f: True, top),
    }
