"""Instructions (Ir) counted by callgrind over marked stretches of a benchmark's own run.

A benchmark module runs itself under ``valgrind --tool=callgrind`` with ``--marks
LIBRARY``; inside, :class:`Marks` starts instrumenting before a scenario, zeroes the
counts once it is warm, and dumps them under the scenario's name when it ends (callgrind's
client requests, through a small C helper compiled with ``cc``). The totals repeat to
within a fraction of a per cent whatever else the machine does.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import tempfile
from pathlib import Path

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
