"""Sample the web tier's processes with py-spy during a scenario and summarise the hot spots.

py-spy (``requirements-dev.txt``) records every process in ``--nonblocking`` mode, so they
are not paused while sampled; the sampler still takes some CPU, so a profiled run is
slower than an unprofiled one.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 250
"""Samples per second per process."""


def start(master_pid: int, duration: float, out_prefix: Path) -> subprocess.Popen:
    """py-spy on the master and its workers; writes ``<prefix>.txt`` (collapsed stacks)."""
    exe = py_spy()
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    args = [
        exe, "record",
        "--pid", str(master_pid),
        "--subprocesses",
        "--nonblocking",
        "--rate", str(RATE),
        "--duration", str(max(1, round(duration))),
        "--format", "raw",
        "--output", str(out_prefix.with_suffix(".txt")),
    ]  # fmt: skip
    return subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def stop(process: subprocess.Popen, timeout: float = 30.0) -> None:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


MARKERS = ("site-packages/", "/work/main/", "python3.11/")
"""Path prefixes cut from frames, so they read ``bridge/delivery/relay.py:deliver``."""


def py_spy() -> str:
    """The py-spy executable: beside this interpreter (a virtualenv not on ``PATH``), or
    on ``PATH``."""
    beside = Path(sys.executable).parent / "py-spy"
    exe = str(beside) if beside.exists() else shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install -r requirements-dev.txt")
    return exe


def frame(text: str) -> str | None:
    """``fn (path/file.py:12)`` as ``path/file.py:fn``; None for non-frames (thread ids)."""
    name, _, where = text.partition(" (")
    if not where:
        return None
    path = where.rstrip(")").rpartition(":")[0]
    for marker in MARKERS:
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{name}"


def frames(stack: str) -> list[str]:
    """The frames of one collapsed ``;``-separated stack, outermost first."""
    return [f for f in (frame(part) for part in stack.split(";")) if f]


def shares(counter: Counter[str], total: int, keep, top: int) -> list[tuple[str, float]]:
    """The ``top`` entries ``keep`` accepts, as percentages of ``total`` samples."""
    if not total:
        return []
    return [(f, round(100 * c / total, 1)) for f, c in counter.most_common() if keep(f)][:top]


def summarise(collapsed: Path, top: int = 25) -> dict:
    """Inclusive share per function (bridge code and libraries), and the top self frames."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        stack_frames = frames(stack)
        if not stack_frames:
            continue
        # idle threads wait in selectors/locks: keep only samples that run request code
        if not any("flask/app.py" in f or "workers/" in f for f in stack_frames):
            continue
        if stack_frames[-1].endswith(("select", "wait", "acquire", "_worker")):
            continue
        total += n
        for f in set(stack_frames):
            inclusive[f] += n
        own[stack_frames[-1]] += n
    own_code = ("bridge/", "app.py", "schemas/")
    return {
        "samples": total,
        "bridge_inclusive_pct": shares(inclusive, total, lambda f: f.startswith(own_code), top),
        "all_inclusive_pct": shares(inclusive, total, lambda f: True, top),
        "self_pct": shares(own, total, lambda f: True, top),
    }
