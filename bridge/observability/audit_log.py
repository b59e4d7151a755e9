"""The audit trail of SCIM requests: who asked what, and what the bridge answered.

JIT sign-ins are appended to the same trail (``kind: signin``, see
:mod:`bridge.sso.signin_audit`): who, which IdP, the outcome and a refusal's reason.

Every ``/scim`` request is appended to the Redis stream ``{prefix}:audit`` (method,
path, status, latency, resource type and id, token id and name, client IP, request id,
and bodies with secrets masked), trimmed to about ``BRIDGE_AUDIT_MAX_ENTRIES`` entries
(``MAXLEN ~``). Entries are buffered in the process and written by a background thread
in one round trip (a script) every FLUSH_SECONDS (or sooner when BATCH wait), so the trail
adds no round trip to a request. What a process buffered when it is killed (at most
FLUSH_SECONDS' worth) is lost; an entry Redis cannot take is dropped and counted
(``bridge_audit_dropped_total``), never retried at the request's expense.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import weakref
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import redis

from bridge.observability import metrics
from bridge.observability.masking import mask_body, mask_text, may_name_secret
from bridge.runtime import clock

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
BATCH = 200
BUFFER_LIMIT = 10_000
"""Entries a process holds while Redis is away; older ones are dropped beyond it."""

BODY_BYTES = 4096
"""Longest body kept (after masking); longer ones are cut and marked ``truncated``."""

_APPEND = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
return #ARGV - 1
"""
"""Append a batch of entries in one command (cheaper to send than a pipeline of XADDs)."""

READ_BATCH = 500
SCAN_LIMIT = 50_000
"""Entries one read looks through at most to find ``limit`` that match its filters."""


def body_text(raw: bytes | None, parsed: object = None) -> str | None:
    """A request body fit to store, cut short: the parsed JSON with secret attributes
    (``password``, a PATCH that sets it) masked, or the raw text with credentials masked
    when it did not parse."""
    if parsed is not None:
        text = orjson.dumps(parsed).decode()
        if may_name_secret(text):
            text = orjson.dumps(mask_body(parsed, strings=False)).decode()
    elif not raw:
        return None
    else:
        text = mask_text(raw[: BODY_BYTES * 2].decode("utf-8", "replace"))
    return _cut(text)


def response_text(raw: bytes) -> str | None:
    """A response body fit to store, cut short. The bridge never answers with a secret
    (passwords are never returned, tokens never echoed), so it is kept as sent."""
    if not raw:
        return None
    return _cut(raw[: BODY_BYTES + 1].decode("utf-8", "replace"))


def _cut(text: str) -> str:
    if len(text) > BODY_BYTES:
        return text[:BODY_BYTES] + "…(truncated)"
    return text


class AuditLog:
    """Buffers entries and writes them in the background; reads them back with filters."""

    def __init__(self, client: redis.Redis, prefix: str, max_entries: int) -> None:
        self.redis = client
        self.key = f"{prefix}:audit"
        self.max_entries = max_entries
        self._buffer: deque[bytes] = deque()
        self._append = client.register_script(_APPEND)
        # one flush at a time: an explicit flush waits for the writer thread's batch in
        # flight, so what was appended before it is in Redis when it returns
        self._flushing = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether SCIM requests are recorded (``max_entries`` above 0)."""
        return self.max_entries > 0

    # --- writing ------------------------------------------------------------------------
    def append(self, entry: dict[str, Any]) -> None:
        """Queue one entry; the process's writer thread sends it within FLUSH_SECONDS."""
        if not self.enabled:
            return
        if len(self._buffer) >= BUFFER_LIMIT:
            self._buffer.popleft()
            metrics.AUDIT_DROPPED.labels("buffer").inc()
        self._buffer.append(orjson.dumps(entry))
        _writer.watch(self, len(self._buffer) >= BATCH)

    def flush(self) -> int:
        """Write what is buffered, in one round trip per BATCH entries."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        written = 0
        while self._buffer:
            batch: list[bytes] = []
            while self._buffer and len(batch) < BATCH:
                batch.append(self._buffer.popleft())
            try:
                self._append(keys=[self.key], args=[self.max_entries, *batch])
            except Exception as exc:  # noqa: BLE001 - a broken or closed connection (not always a RedisError) must not stop the writer thread
                metrics.AUDIT_DROPPED.labels("redis").inc(len(batch))
                log.warning("audit: %d entries dropped, Redis refused them: %s", len(batch), exc)
                return written
            written += len(batch)
        return written

    # --- reading ------------------------------------------------------------------------
    def read(
        self,
        *,
        status: str | None = None,
        resource: str | None = None,
        since: datetime | None = None,
        request_id: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first, those that match every filter given: ``status`` an exact code
        (``404``) or a class (``4xx``); ``resource`` a resource id, a resource type
        (``Users``) or a token name; ``since`` a time."""
        low = f"{int(since.timestamp() * 1000)}-0" if since else "-"
        high = "+"
        found: list[dict[str, Any]] = []
        scanned = 0
        while len(found) < limit and scanned < SCAN_LIMIT:
            # the client does not decode responses: ids and fields are bytes
            rows = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self.redis.xrevrange(self.key, max=high, min=low, count=READ_BATCH),
            )
            if not rows:
                break
            for entry_id, fields in rows:
                entry = orjson.loads(fields[b"e"])
                entry["entry"] = entry_id.decode()
                if _matches(entry, status, resource, request_id):
                    found.append(entry)
                    if len(found) >= limit:
                        break
            scanned += len(rows)
            last = bytes(rows[-1][0]).decode()
            high = f"({last}"
        return found


class _Writer:
    """One background thread per process flushes every audit log with entries waiting
    (a forked web worker starts its own on its first entry)."""

    def __init__(self) -> None:
        self._logs: weakref.WeakSet[AuditLog] = weakref.WeakSet()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pid = 0

    def watch(self, audit: AuditLog, now: bool) -> None:
        if audit not in self._logs:
            self._logs.add(audit)
        if self._pid != os.getpid():
            self._start()
        if now:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="audit", daemon=True).start()
            atexit.register(self.flush_all)

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush_all()

    def flush_all(self) -> None:
        for audit in list(self._logs):
            if audit._buffer:
                audit.flush()


_writer = _Writer()


def flush_pending() -> None:
    """Write the entries every audit log of this process still buffers (done at exit too;
    call it first when Redis is about to go away before the process does)."""
    _writer.flush_all()


def _matches(
    entry: dict[str, Any], status: str | None, resource: str | None, request_id: str | None
) -> bool:
    if status:
        code = str(entry.get("status", ""))
        if status.lower().endswith("xx"):
            if code[:1] != status[:1]:
                return False
        elif code != status:
            return False
    if resource and resource not in (
        entry.get("resource_id"),
        entry.get("resource_type"),
        entry.get("token_name"),
        entry.get("kind"),  # "signin": JIT sign-ins (bridge.sso.signin_audit)
        entry.get("idp"),
    ):
        return False
    return not (request_id and entry.get("request_id") != request_id)


_RELATIVE = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str | None) -> datetime | None:
    """``since`` as an ISO 8601 time (``2026-12-01T10:00:00Z``) or an age (``15m``,
    ``2h``, ``1d``); ValueError for anything else."""
    if not text:
        return None
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount, unit = relative.groups()
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the millisecond, as audit entries carry it."""
    return clock.now("milliseconds")
