"""Prometheus metrics: counted where things happen, and read from Redis when scraped.

Two sources make up ``/metrics``:

- **Per-process metrics** (counters and histograms below): SCIM requests, directory
  writes, delivery attempts, reconciliation runs. The web tier runs several processes
  and the workers are processes of their own, so these use prometheus-client's
  multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` names a directory shared by the
  processes of one machine (``serve.sh`` sets it for every process it starts, wiped at
  start). Each process writes its values to memory-mapped files there and any web process
  sums them when scraped. Only counters and histograms are kept per process, and they
  outlive their process by design (a counter must not drop when a process restarts), so
  a dead process never leaves a stale value behind.
- **Cluster state** (:class:`bridge.observability.scrape.RedisCollector`), read from Redis in a few pipelined round
  trips at scrape time: the change stream, the queues and their oldest job, workers,
  dispatchers and schedulers alive, every target's breaker, dead letters, held and
  pending deliveries and delivery counters, the directory's size and the last
  reconciliation's drift. It is the same whichever process answers, and whichever
  machine the workers run on.

Workers that run on other machines than the web tier serve their own per-process
metrics on ``BRIDGE_WORKER_METRICS_BIND`` (see :mod:`bridge.observability.scrape`).

This module imports nothing of the bridge, so anything may count here. Every metric has
labels, so nothing is written to the multiprocess directory before the first count (and
Settings has checked the directory by then).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

# --- per process ---------------------------------------------------------------------------
SCIM_REQUESTS = Counter(
    "bridge_scim_requests",
    "SCIM requests answered, by method, resource type and HTTP status.",
    ["method", "resource", "status"],
)
SCIM_LATENCY = Histogram(
    "bridge_scim_request_duration_seconds",
    "Time to answer a SCIM request, by method and resource type.",
    ["method", "resource"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DIRECTORY_WRITES = Counter(
    "bridge_directory_writes",
    "Directory writes (each one Lua script), by kind, operation and result.",
    ["kind", "op", "result"],
)
DIRECTORY_WRITE_LATENCY = Histogram(
    "bridge_directory_write_duration_seconds",
    "Round trip of one directory write script, by operation.",
    ["op"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
DELIVERY_ATTEMPTS = Counter(
    "bridge_delivery_attempts",
    "Deliveries examined by the workers, by target and outcome (delivered, retry, dead, "
    "held, shadow, noop, busy, deferred).",
    ["target", "outcome"],
)
DELIVERY_LATENCY = Histogram(
    "bridge_delivery_duration_seconds",
    "Time of one delivery that called its target (read, map, send, record), by target and outcome.",
    ["target", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RECONCILE_RUNS = Counter(
    "bridge_reconcile_runs",
    "Resync and reconciliation runs finished, by status.",
    ["status"],
)
RECONCILE_DRIFT = Counter(
    "bridge_reconcile_drift",
    "Drift found by finished runs, by class (missing, unassigned, attributes, membership).",
    ["drift_class"],
)
JIT_SIGNINS = Counter(
    "bridge_jit_signins",
    "Just-in-time sign-ins (SAML and OIDC), by IdP, outcome (created, updated, unchanged, "
    "kept, refused) and, for a refusal, its reason.",
    ["idp", "outcome", "reason"],
)
AUDIT_DROPPED = Counter(
    "bridge_audit_dropped",
    "SCIM audit entries dropped, by reason (redis: Redis refused them; buffer: too many "
    "waited while Redis was away).",
    ["reason"],
)

SCIM_RESOURCES = frozenset(
    {"Users", "Groups", "Bulk", ".search", "ServiceProviderConfig", "ResourceTypes", "Schemas"}
)
"""The ``resource`` label's values (plus ``other``): the path segment after /scim/v2."""

DELIVERY_CALLED = frozenset({"delivered", "retry", "dead"})
"""Outcomes of a delivery that called its target: their latency is recorded."""


def scim_resource(path: str) -> str:
    """The resource label of a (canonical) SCIM path: bounded, never an id."""
    segment = path[len("/scim/v2/") :].split("/", 1)[0] if path.startswith("/scim/v2/") else ""
    return segment if segment in SCIM_RESOURCES else "other"


MAX_REMEMBERED_SERIES = 1024
"""Label combinations whose series :func:`observe_request`, :func:`observe_write` and
:func:`observe_delivery` keep at hand; past it they start over (a client chooses the
method)."""

_request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_write_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_delivery_series: dict[tuple[str, str], tuple[Any, Any]] = {}


def observe_request(method: str, path: str, status: int, seconds: float) -> None:
    """Count one SCIM request and its latency, by resource type rather than path."""
    resource = scim_resource(path)
    key = (method, resource, status)
    series = _request_series.get(key)
    if series is None:  # labels() is a lock and a lookup: done once per combination
        series = (
            SCIM_REQUESTS.labels(method, resource, str(status)),
            SCIM_LATENCY.labels(method, resource),
        )
        _remember(_request_series, key, series)
    series[0].inc()
    series[1].observe(seconds)


def observe_write(kind: str, op: str, result: str, seconds: float) -> None:
    """Count one directory write and its latency."""
    key = (kind, op, result)
    series = _write_series.get(key)
    if series is None:
        series = (DIRECTORY_WRITES.labels(kind, op, result), DIRECTORY_WRITE_LATENCY.labels(op))
        _remember(_write_series, key, series)
    series[0].inc()
    series[1].observe(seconds)


def _remember(memo: dict[Any, tuple[Any, Any]], key: Any, series: tuple[Any, Any]) -> None:
    if len(memo) >= MAX_REMEMBERED_SERIES:
        memo.clear()
    memo[key] = series


def observe_delivery(target: str, outcome: str, seconds: float | None) -> None:
    """Count one delivery attempt; its latency only when the target was called."""
    key = (target, outcome)
    series = _delivery_series.get(key)
    if series is None:  # a latency series only for outcomes that call the target
        latency = DELIVERY_LATENCY.labels(target, outcome) if outcome in DELIVERY_CALLED else None
        series = (DELIVERY_ATTEMPTS.labels(target, outcome), latency)
        _remember(_delivery_series, key, series)
    series[0].inc()
    if seconds is not None and series[1] is not None:
        series[1].observe(seconds)


def observe_signin(idp: str, outcome: str, reason: str = "") -> None:
    """Count one JIT sign-in; ``idp`` is a configured IdP's name (``-`` for an unknown one,
    so a URL cannot add labels)."""
    JIT_SIGNINS.labels(idp, outcome, reason).inc()


def observe_run(status: str, drift: dict[str, Any] | None) -> None:
    """Count one finished resync or reconciliation and the drift it found, by class."""
    RECONCILE_RUNS.labels(status).inc()
    for name, count in (drift or {}).items():
        if isinstance(count, int) and count:
            RECONCILE_DRIFT.labels(name).inc(count)
