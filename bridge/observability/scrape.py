"""``/metrics``: every process's metrics, plus the cluster state read from Redis.

See :mod:`bridge.observability.metrics` for what is counted where, and why the web tier's
processes and a machine's workers share a multiprocess directory.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import orjson
import redis
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from rq.job import Job
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.utils import utcparse

from bridge.delivery.jobs import waiting_in_lanes
from bridge.graph.runner import SCOPE
from bridge.observability import health

if TYPE_CHECKING:  # services imports the app's whole object graph
    from bridge.directory.records import Directory
    from bridge.runtime.services import Services

log = logging.getLogger(__name__)


# --- cluster state, read at scrape time ---------------------------------------------------
class RedisCollector(Collector):
    """Gauges and counters read from Redis when scraped; a Redis error yields
    ``bridge_redis_up 0`` and nothing else (the scrape itself still succeeds)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        """``bridge_redis_up``, then the cluster state when Redis answered."""
        up = GaugeMetricFamily("bridge_redis_up", "Whether Redis answered this scrape.")
        try:
            metrics = list(self._collect())
        except redis.RedisError as exc:
            log.warning("metrics: Redis error while scraping: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _collect(self) -> Iterator[Metric]:
        s = self.services
        r: redis.Redis = s.redis
        yield from self._stream(r, s.settings.key_prefix)
        yield from self._directory(r, s.directory)
        yield from self._queues(r, s)
        yield from self._liveness(r)
        yield from self._targets(r, s)
        yield from self._reconcile(s)

    def _stream(self, r: redis.Redis, prefix: str) -> Iterator[Metric]:
        state = health.stream_state(r, prefix)
        yield _gauge(
            "bridge_change_stream_length", "Changes not yet turned into jobs.", state.length
        )
        yield _gauge(
            "bridge_change_stream_pending",
            "Changes a dispatcher read and has not handed over yet.",
            state.pending,
        )
        yield _gauge(
            "bridge_change_stream_lag_seconds",
            "Age of the oldest change not yet turned into jobs (0 when none waits).",
            state.oldest_age_seconds,
        )
        yield _gauge(
            "bridge_dispatchers_alive", "Change-stream dispatchers alive.", state.dispatchers
        )

    def _directory(self, r: redis.Redis, directory: Directory) -> Iterator[Metric]:
        pipe = r.pipeline(transaction=False)
        pipe.zcard(directory.order_key("user"))
        pipe.zcard(directory.order_key("group"))
        users, groups = pipe.execute()
        family = GaugeMetricFamily(
            "bridge_directory_resources", "Resources in the directory.", labels=["kind"]
        )
        family.add_metric(["user"], users)
        family.add_metric(["group"], groups)
        yield family

    def _queues(self, r: redis.Redis, s: Services) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "bridge_jobs",
            "RQ jobs by queue and state (queued, waiting for a place in their target's "
            "lane, started, scheduled, deferred, failed).",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "bridge_jobs_oldest_queued_age_seconds",
            "Age of the oldest job waiting in a queue (0 when empty).",
            labels=["queue"],
        )
        registries = {
            "started": StartedJobRegistry,
            "scheduled": ScheduledJobRegistry,
            "deferred": DeferredJobRegistry,
            "failed": FailedJobRegistry,
        }
        pipe = r.pipeline(transaction=False)
        for queue in s.queues.values():
            pipe.llen(queue.key)
            pipe.lindex(queue.key, 0)
            for cls in registries.values():
                pipe.zcard(cls(queue=queue).key)
        replies = iter(pipe.execute())
        heads: dict[str, bytes | None] = {}
        for name in s.queues:
            jobs.add_metric([name, "queued"], next(replies))
            heads[name] = next(replies)
            for state in registries:
                jobs.add_metric([name, state], next(replies))
        for name, count in waiting_in_lanes(r, s.settings.key_prefix).items():
            jobs.add_metric([name, "waiting"], count)
        pipe = r.pipeline(transaction=False)
        for head in heads.values():
            pipe.hget(Job.redis_job_namespace_prefix + (head or b"").decode(), "enqueued_at")
        now = time.time()
        for name, enqueued in zip(heads, pipe.execute(), strict=True):
            age = 0.0
            if heads[name] and enqueued:
                age = max(0.0, now - utcparse(enqueued.decode()).timestamp())
            oldest.add_metric([name], round(age, 3))
        yield jobs
        yield oldest

    def _liveness(self, r: redis.Redis) -> Iterator[Metric]:
        workers = health.workers_alive(r)
        yield _gauge(
            "bridge_worker_processes_alive", "Worker processes heart-beating.", workers["processes"]
        )
        lanes = GaugeMetricFamily(
            "bridge_worker_lanes_alive", "Worker lanes registered, by queue.", labels=["queue"]
        )
        for queue, count in sorted(workers["queues"].items()):
            lanes.add_metric([queue], count)
        yield lanes
        schedulers = GaugeMetricFamily(
            "bridge_scheduler_alive",
            "Whether a live RQ scheduler releases the queue's delayed jobs.",
            labels=["queue"],
        )
        for queue, alive in health.schedulers_alive(r).items():
            schedulers.add_metric([queue], 1 if alive else 0)
        yield schedulers

    def _targets(self, r: redis.Redis, s: Services) -> Iterator[Metric]:
        configs = s.targets.configs()
        d = s.deliveries
        pipe = r.pipeline(transaction=False)
        for c in configs:
            pipe.hlen(d.key(c["id"], "dead"))
            pipe.hvals(d.key(c["id"], "held"))
            pipe.scard(d.key(c["id"], "pending:changes"))
            pipe.scard(d.key(c["id"], "pending:deprovision"))
            pipe.hgetall(d.key(c["id"], "breaker"))
            pipe.hgetall(d.key(c["id"], "stats"))
        replies = iter(pipe.execute())
        dead = GaugeMetricFamily(
            "bridge_target_dead_letters",
            "Dead-lettered deliveries (replayable).",
            labels=["target"],
        )
        held = GaugeMetricFamily(
            "bridge_target_held",
            "Deliveries held, by reason (guard: the deletion guard; circuit: quarantine).",
            labels=["target", "reason"],
        )
        pending = GaugeMetricFamily(
            "bridge_target_pending", "Resources waiting in the target's lanes.", labels=["target"]
        )
        breaker = GaugeMetricFamily(
            "bridge_target_breaker_open",
            "1 while the target is quarantined by its circuit breaker.",
            labels=["target"],
        )
        failures = GaugeMetricFamily(
            "bridge_target_consecutive_failures",
            "Failed deliveries in a row (the breaker opens at BRIDGE_BREAKER_THRESHOLD).",
            labels=["target"],
        )
        enabled = GaugeMetricFamily(
            "bridge_target_enabled", "1 when the target is enabled.", labels=["target", "shadow"]
        )
        totals = CounterMetricFamily(
            "bridge_target_deliveries",
            "Deliveries recorded by every worker, by target and outcome (delivered, "
            "retried, dead, held, shadow …), from the targets' counters in Redis.",
            labels=["target", "outcome"],
        )
        for c in configs:
            name = c["name"]
            dead.add_metric([name], next(replies))
            reasons: dict[str, int] = {"guard": 0, "circuit": 0}
            for raw in next(replies):
                reason = orjson.loads(raw).get("reason") or "other"
                reasons[reason] = reasons.get(reason, 0) + 1
            for reason, count in reasons.items():
                held.add_metric([name, reason], count)
            pending.add_metric([name], next(replies) + next(replies))
            state = {k.decode(): v.decode() for k, v in next(replies).items()}
            breaker.add_metric([name], 1 if state.get("state") == "open" else 0)
            failures.add_metric([name], int(state.get("failures") or 0))
            enabled.add_metric(
                [name, "true" if c.get("shadow") else "false"], 1 if c.get("enabled", True) else 0
            )
            for outcome, count in sorted(next(replies).items()):
                totals.add_metric([name, outcome.decode()], int(count))
        yield from (dead, held, pending, breaker, failures, enabled, totals)

    def _reconcile(self, s: Services) -> Iterator[Metric]:
        run = s.runs.get(SCOPE)
        drift = GaugeMetricFamily(
            "bridge_reconcile_last_drift",
            "Drift the latest resync or reconciliation found, by class.",
            labels=["drift_class"],
        )
        status = GaugeMetricFamily(
            "bridge_reconcile_last_status",
            "1 for the status of the latest run (queued, running, completed, "
            "completed_with_errors, failed, cancelled, awaiting_confirmation).",
            labels=["status"],
        )
        if run:
            for name, count in (run.get("drift") or {}).items():
                if isinstance(count, int):
                    drift.add_metric([name], count)
            status.add_metric([str(run.get("status"))], 1)
        yield drift
        yield status


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


# --- exposition ------------------------------------------------------------------------------
class _ThisProcess(Collector):
    """This process's own metrics, when there is no multiprocess directory."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def registry(metrics_dir: str, services: Services | None = None) -> CollectorRegistry:
    """What ``/metrics`` exposes: every process's metrics from ``metrics_dir`` (or this
    process's alone), plus the cluster state read from Redis when ``services`` is given."""
    reg = CollectorRegistry(auto_describe=False)
    if metrics_dir:
        MultiProcessCollector(reg, path=metrics_dir)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    else:
        reg.register(_ThisProcess())
    if services is not None:
        reg.register(RedisCollector(services))
    return reg


def exposition(reg: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus text format, with its content type."""
    return generate_latest(reg), CONTENT_TYPE_LATEST


class TokenCheck:
    """The metrics token, compared by digest in constant time (BRIDGE_METRICS_TOKEN)."""

    def __init__(self, token: str) -> None:
        self._digest = hashlib.sha256(token.encode()).digest() if token else None

    @property
    def configured(self) -> bool:
        """Whether a metrics token is set (without one, nothing is served)."""
        return self._digest is not None

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the metrics token as a bearer."""
        if self._digest is None or not authorization:
            return False
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        return hmac.compare_digest(
            hashlib.sha256(presented.strip().encode()).digest(), self._digest
        )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Scrapes are not worth a log line each."""


def serve_worker_metrics(bind: str, token: str, metrics_dir: str) -> WSGIServer:
    """Serve this worker process's metrics (or its machine's, with a multiprocess
    directory) at ``http://{bind}/metrics``, behind the metrics token, in a thread."""
    check = TokenCheck(token)
    host, _, port = bind.rpartition(":")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not check.allows(environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"a valid metrics token is required\n"]
        body, content_type = exposition(registry(metrics_dir))
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    server = make_server(host or "127.0.0.1", int(port), app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
