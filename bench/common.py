"""Small helpers every benchmark script shares."""

from __future__ import annotations

import argparse
import math
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


def _terminate(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGTERM and SIGINT unwind the script like Ctrl-C, so its cleanup runs (SIGINT too
    when started with it ignored, as a background job of a non-interactive shell)."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def machine() -> dict[str, Any]:
    """What a result was measured on: CPUs, Python, platform, load when it started."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of already sorted values (nan when empty)."""
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def run_main(
    args: argparse.Namespace,
    run_benchmark: Callable[[argparse.Namespace], dict[str, Any]],
    print_report: Callable[[dict[str, Any]], None],
    passed: Callable[[dict[str, Any]], bool] = lambda results: True,
) -> int:
    """A benchmark's main: run it (every process stopped on Ctrl-C or SIGTERM), print the
    report and write the results to ``args.output`` as JSON. Exit status 1 when the
    results do not pass ``passed`` (a check of what was measured)."""
    stop_on_signals()
    try:
        results = run_benchmark(args)
    except KeyboardInterrupt:
        print("\ninterrupted; all processes stopped", file=sys.stderr)
        return 130
    print_report(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"written to {args.output}")
    return 0 if passed(results) else 1


def save_run(
    path: Path, label: str, figures: dict[str, dict[str, float]], what: str, **about: Any
) -> None:
    """Record ``figures`` (kind -> scenario -> value) as run ``label`` in the JSON results
    file ``path`` (which says ``what`` it holds), with the date, the commit, Python's
    version and ``about``."""
    data: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    data.setdefault("what", what)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    run = data.setdefault("runs", {}).setdefault(label, {})
    run.update(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        commit=commit,
        python=platform.python_version(),
        **about,
    )
    for kind, values in figures.items():
        run.setdefault(kind, {}).update({s: round(v, 1) for s, v in values.items()})
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
