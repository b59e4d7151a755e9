"""Instructions (Ir) counted by callgrind over marked stretches of a benchmark's own run.

A benchmark module runs itself under ``valgrind --tool=callgrind`` with ``--marks
LIBRARY``; inside, :class:`Marks` starts instrumenting before a scenario, zeroes the
counts once it is warm, and dumps them under the scenario's name when it ends (callgrind's
client requests, through a small C helper compiled with ``cc``). The totals repeat to
within a fraction of a per cent whatever else the machine does.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import save_run

MARKS_C = r"""
#include <valgrind/callgrind.h>
void bench_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void bench_zero(void) { CALLGRIND_ZERO_STATS; }
void bench_dump(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
void bench_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


class Marks:
    """Callgrind's client requests (no-ops when not under valgrind)."""

    def __init__(self, library: str | None) -> None:
        self.lib = ctypes.CDLL(library) if library else None

    def start(self) -> None:
        if self.lib:
            self.lib.bench_start()

    def zero(self) -> None:
        if self.lib:
            self.lib.bench_zero()

    def dump(self, name: str) -> None:
        if self.lib:
            self.lib.bench_dump(name.encode())

    def stop(self) -> None:
        if self.lib:
            self.lib.bench_stop()


def totals(module: str, args: list[str]) -> dict[str, int]:
    """Run ``python -m module *args --marks LIB`` under callgrind: Ir per dump name."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "marks.c"
        source.write_text(MARKS_C)
        library = Path(tmp) / "marks.so"
        subprocess.run(
            ["cc", "-O1", "-shared", "-fPIC", "-o", str(library), str(source)], check=True
        )
        out_file = Path(tmp) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=yes",
            f"--callgrind-out-file={out_file}", "--compress-strings=no",
            sys.executable, "-m", module, *args, "--marks", str(library),
        ]  # fmt: skip
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(command, check=True, env=env, stderr=subprocess.DEVNULL)
        found: dict[str, int] = {}
        for dump in Path(tmp).glob("callgrind.out.*"):
            name, total = dump_total(dump)
            found[name] = total
        return found


def dump_total(path: Path) -> tuple[str, int]:
    """The trigger name (``Client Request: <name>``) and the Ir total of one dump."""
    name, total = "", 0
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("desc: Trigger: Client Request:"):
            name = line.rsplit(":", 1)[-1].strip()
        elif line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
    return name, total


@dataclass(frozen=True)
class CpuBenchmark:
    """The command line of a benchmark that measures, per unit of work (a request, a
    delivery) of each scenario, CPU µs or, with ``--callgrind``, instructions."""

    module: str
    """The benchmark's module, run again under callgrind (``python -m module``)."""
    description: str
    unit: str
    many: str
    """The unit's plural, the option that sets how many (``--many``)."""
    scenarios: tuple[str, ...]
    measure: Callable[[list[str], int, Marks], dict[str, dict[str, float]]]
    """Runs the scenarios, ``count`` units each, marking each for callgrind; CPU figures."""
    results: Path
    units: Callable[[str, int], int] = field(default=lambda _name, count: count)
    """How many units a scenario asked for ``count`` ran (a dump is divided by it)."""

    def main(self) -> None:
        many = self.many
        p = argparse.ArgumentParser(
            description=self.description, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        p.add_argument(f"--{many}", type=int, default=400, help=f"measured {many} per scenario")
        p.add_argument("--scenarios", default=",".join(self.scenarios))
        p.add_argument("--callgrind", action="store_true", help=f"instructions per {self.unit}")
        p.add_argument("--save", metavar="NAME", help=f"record the figures in {self.results.name}")
        p.add_argument("--marks", help=argparse.SUPPRESS)  # the helper library, under callgrind
        args = p.parse_args()
        count: int = getattr(args, many)
        names = [s for s in args.scenarios.split(",") if s]
        unknown = set(names) - set(self.scenarios)
        if unknown:
            p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
        if args.marks:
            self.measure(names, count, Marks(args.marks))
            return
        figures: dict[str, dict[str, float]] = {}
        if args.callgrind:
            found = totals(self.module, [f"--{many}", str(count), "--scenarios", ",".join(names)])
            figures[f"ir_per_{self.unit}"] = {
                n: found[n] / self.units(n, count) for n in names if n in found
            }
        else:
            figures.update(self.measure(names, count, Marks(None)))
        for name in names:
            row = "  ".join(f"{k} {f[name]:>12,.1f}" for k, f in figures.items() if name in f)
            print(f"{name:14s} {row}")
        if args.save:
            what = self.description.splitlines()[0]
            save_run(self.results, args.save, figures, what, **{f"{many}_per_scenario": count})
