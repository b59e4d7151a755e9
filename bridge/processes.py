"""Child processes that do not outlive the process that started them.

A supervisor (``serve.sh``, a test, a benchmark) that is itself killed with SIGKILL cannot
stop its children; on Linux the kernel can (``PR_SET_PDEATHSIG``), so none is left behind
holding a port or writing to Redis.
"""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when its parent dies."""


def die_with_parent() -> None:
    """For ``Popen(preexec_fn=...)``: SIGKILL this child when its parent goes away."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
