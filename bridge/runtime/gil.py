"""How quickly a thread hands the GIL to another waiting for it, in the bridge's processes.

Web and worker threads mostly wait on Redis and on targets, and each round trip ends by
taking the GIL back. With Python's default switch interval (5 ms), a thread back from
Redis while another runs Python code waits up to 5 ms, per round trip: a change's way from
the change stream to a target takes some thirty round trips (dispatch, RQ's bookkeeping of
the job, the delivery), so under load the waits, not the work, set the latency.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits for it (Python's default: 0.005)."""


def hand_over_quickly() -> None:
    """Set this process's switch interval to SWITCH_INTERVAL."""
    sys.setswitchinterval(SWITCH_INTERVAL)
