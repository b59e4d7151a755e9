"""The bridge's clock (bridge.runtime.clock): UTC, ISO 8601."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bridge.runtime.clock import now


def test_now_is_utc_iso_8601_to_the_second():
    before = datetime.now(UTC).replace(microsecond=0)
    text = now()
    after = datetime.now(UTC)
    assert text.endswith("+00:00")
    assert before <= datetime.fromisoformat(text) <= after


def test_now_moves_on_with_the_second():
    first = now()
    time.sleep(1.05)
    assert datetime.fromisoformat(now()) > datetime.fromisoformat(first)


def test_milliseconds_are_given_when_asked():
    text = now("milliseconds")
    assert len(text.split("T")[1].split("+")[0]) == len("01:02:03.456")
    assert abs(datetime.fromisoformat(text) - datetime.now(UTC)).total_seconds() < 1
