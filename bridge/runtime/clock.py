"""The bridge's one clock for stored and logged times: UTC, ISO 8601.

A time to the second is formatted once per second and kept (formatting costs about
fifteen times reading the clock, and every write, delivery and audit entry asks for it).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

_this_second: tuple[int, str] = (-1, "")
"""The last second formatted, and its text (replaced whole, so threads read a pair)."""


def now(timespec: Literal["seconds", "milliseconds"] = "seconds") -> str:
    """The time now in UTC, ISO 8601 (``2026-12-01T23:00:38+00:00``)."""
    global _this_second
    if timespec != "seconds":
        return datetime.now(UTC).isoformat(timespec=timespec)
    second = int(time.time())
    cached = _this_second
    if cached[0] != second:
        text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
        _this_second = cached = (second, text)
    return cached[1]
