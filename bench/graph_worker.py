"""One Graph → directory resync, run as a worker runs it, in a process of its own.

    python -m bench.graph_worker --mode full|incremental --out FILE

Configured by the environment like a worker (``REDIS_URL``, ``BRIDGE_GRAPH_*``): it builds
the worker services (``bridge.runtime.services.build``), registers the run (``Runs.start``, as the
enqueuer does) and calls the RQ job function ``workers.reconcile.resync(mode="graph")``,
which builds the Reconciler with ``workers.reconcile._reconciler`` and runs
``Reconciler.full``/``incremental`` inside ``async with GraphSource(settings)``.

Writes ``--out`` (JSON): wall time of the job, time to import and set up, peak RSS
(``ru_maxrss``), CPU time, and the run record the job finished with.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

PARENT_CHECK_SECONDS = 1.0


def _watch_parent(parent: int) -> None:
    """Exit if the benchmark that started us is gone (it stops us otherwise)."""
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(3)


def _rusage() -> dict:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "ru_maxrss_kb": ru.ru_maxrss,
        "cpu_user_s": round(ru.ru_utime, 3),
        "cpu_sys_s": round(ru.ru_stime, 3),
    }


def main(argv: list[str] | None = None) -> int:
    spawned = time.perf_counter()
    p = argparse.ArgumentParser(prog="python -m bench.graph_worker")
    p.add_argument("--mode", choices=("full", "incremental"), required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scope", default="default")
    p.add_argument("--no-parent-watch", action="store_true", help="when run under py-spy")
    args = p.parse_args(argv)
    if not args.no_parent_watch:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    import orjson

    from bridge.graph.runs import Runs
    from bridge.runtime.config import Settings
    from bridge.runtime.services import build
    from workers.context import install
    from workers.reconcile import resync

    ctx = build(Settings.from_env())
    install(ctx)
    runs = Runs(ctx.redis, ctx.settings.key_prefix)
    runs.start(args.scope, mode="graph", full=args.mode == "full")
    before = _rusage()
    setup_s = time.perf_counter() - spawned
    started = time.perf_counter()
    record = resync(mode="graph", full=args.mode == "full", scope=args.scope)
    job_s = time.perf_counter() - started
    after = _rusage()
    out = {
        "mode": args.mode,
        "job_seconds": round(job_s, 3),
        "setup_seconds": round(setup_s, 3),
        "rss_before_job_kb": before["ru_maxrss_kb"],
        **after,
        "job_cpu_s": round(
            after["cpu_user_s"] + after["cpu_sys_s"] - before["cpu_user_s"] - before["cpu_sys_s"],
            3,
        ),
        "record": record,
    }
    args.out.write_bytes(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    return 0 if record.get("status") == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
