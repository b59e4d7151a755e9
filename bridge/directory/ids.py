"""Resource ids: time-ordered UUIDv7s, and the check that a text has their shape."""

from __future__ import annotations

import os
import re
import threading
import time

_id_lock = threading.Lock()
_id_last = [0, 0]  # last millisecond, counter within it


def new_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so id order is creation order.

    Within one millisecond a 12-bit counter (RFC 9562 §6.2, method 1) keeps the ids of
    one process increasing; ids from different processes interleave by time.
    """
    rand = int.from_bytes(os.urandom(9), "big")
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _id_last[0]:
            ms = _id_last[0]
            _id_last[1] += 1
            if _id_last[1] > 0xFFF:
                ms += 1
                _id_last[1] = 0
        else:
            _id_last[1] = rand >> 64  # a random start below 256 leaves room to count up
        _id_last[0] = ms
        counter = _id_last[1]
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
"""What :func:`new_id` makes: a lower-case UUIDv7 in its canonical 8-4-4-4-12 form."""


def is_id(text: object) -> bool:
    """Whether ``text`` has the shape of an id :func:`new_id` makes.

    Anything else names no resource of ours, so it is answered without a Redis call; it
    could otherwise name another key family (``<id>:groups``, ``<id>:members``).
    """
    return isinstance(text, str) and _ID_SHAPE.fullmatch(text) is not None
