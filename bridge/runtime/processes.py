"""Child processes that do not outlive the process that started them.

A supervisor (``serve.sh``, a test, a benchmark) that is itself killed with SIGKILL cannot
stop its children; on Linux the kernel can (``PR_SET_PDEATHSIG``), so none is left behind
holding a port or writing to Redis.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a process gets when its parent dies."""


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def die_with_parent() -> Callable[[], None] | None:
    """For ``Popen(preexec_fn=die_with_parent())``: SIGKILL the child when its parent dies.

    The kernel ties this to the *thread* that started the child, so a child started from
    any other thread than the main one (which lives as long as the process) is left out."""
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        return _die_with_parent
    return None
