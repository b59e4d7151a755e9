"""py-spy around a Graph resync worker process, and a summary of where its time goes.

The worker is started *under* py-spy (``py-spy record -- python -m bench.graph_worker``),
so no ptrace permission on a sibling process is needed. It is one thread running one
asyncio loop; samples are taken with ``--idle``, so the shares are of wall-clock time,
waiting on the fake Graph and on Redis included.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

RATE = 100
"""Samples per second."""

MARKERS = ("site-packages/", "/work/main/", "python3.11/")
OWN_CODE = ("bridge/", "workers/")


def command(output: Path, worker_args: list[str]) -> list[str]:
    """``py-spy record`` running ``worker_args`` (a full command line) as its child."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy==0.3.14")
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


def _frame(text: str) -> str | None:
    name, _, where = text.partition(" (")
    if not where:
        return None
    path = where.rstrip(")").rpartition(":")[0]
    for marker in MARKERS:
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{name}"


def summarise(collapsed: Path, top: int = 30) -> dict:
    """Inclusive shares (own code, and everything) and self shares, of the job's samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f for f in (_frame(p) for p in stack.split(";")) if f]
        # keep the job only: imports and context set-up come before it
        if not any(f == "workers/reconcile.py:resync" for f in frames):
            continue
        n = int(count)
        total += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n

    def share(counter: Counter[str], keep) -> list[tuple[str, float]]:
        if not total:
            return []
        return [(f, round(100 * c / total, 1)) for f, c in counter.most_common() if keep(f)][:top]

    return {
        "samples": total,
        "rate_per_s": RATE,
        "own_inclusive_pct": share(inclusive, lambda f: f.startswith(OWN_CODE)),
        "all_inclusive_pct": share(inclusive, lambda f: True),
        "self_pct": share(own, lambda f: True),
    }
