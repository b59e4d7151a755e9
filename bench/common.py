"""Small helpers every benchmark script shares."""

from __future__ import annotations

import math
import signal


def _terminate(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGTERM and SIGINT unwind the script like Ctrl-C, so its cleanup runs (SIGINT too
    when started with it ignored, as a background job of a non-interactive shell)."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of already sorted values (nan when empty)."""
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]
