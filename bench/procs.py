"""What a server costs: CPU seconds and memory of its whole process tree (psutil)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import psutil

IDLE_CPU_CORES = 0.05
"""A tree using less than this share of one core is idle (between benchmark cells)."""


def tree(root: int) -> list[psutil.Process]:
    """``root`` and every live descendant."""
    try:
        process = psutil.Process(root)
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def kill(procs: Iterable[psutil.Process]) -> None:
    """SIGKILL each of these processes that is still there."""
    for process in procs:
        try:
            process.kill()
        except psutil.Error:
            pass


def processes(roots: Iterable[int]) -> list[psutil.Process]:
    """The trees of every root, each process once."""
    seen: dict[int, psutil.Process] = {}
    for root in roots:
        for process in tree(root):
            seen.setdefault(process.pid, process)
    return list(seen.values())


def cpu_seconds(procs: Iterable[psutil.Process]) -> float:
    """User + system CPU seconds these processes have used so far (gone ones count 0)."""
    total = 0.0
    for process in procs:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def rss_bytes(procs: Iterable[psutil.Process]) -> int:
    """Resident memory summed over the processes (shared pages counted in each)."""
    total = 0
    for process in procs:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def pss_bytes(procs: Iterable[psutil.Process]) -> int:
    """Proportional set size summed: shared pages split between the processes sharing them."""
    total = 0
    for process in procs:
        try:
            total += process.memory_full_info().pss
        except (psutil.Error, AttributeError):
            continue
    return total


def wait_idle(
    procs: Callable[[], list[psutil.Process]], limit: float = 15.0, step: float = 0.3
) -> float:
    """Until the processes use less than IDLE_CPU_CORES (work left from seeding: change
    stream entries, AOF writes); returns the seconds waited, at most ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        members = procs()
        before = cpu_seconds(members)
        time.sleep(step)
        if cpu_seconds(members) - before < IDLE_CPU_CORES * step:
            break
    return round(time.monotonic() - started, 2)
