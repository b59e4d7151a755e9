"""The bridge's one clock for stored and logged times: UTC, ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal


def now(timespec: Literal["seconds", "milliseconds"] = "seconds") -> str:
    """The time now in UTC, ISO 8601 (``2026-12-01T23:00:38+00:00``)."""
    return datetime.now(UTC).isoformat(timespec=timespec)
