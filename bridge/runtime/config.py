"""Settings: the one place that reads the environment (12-factor).

Inbound protection settings: ``BRIDGE_MAX_BODY_BYTES`` (enforced while a body is read,
chunked ones too), ``BRIDGE_RATE_LIMIT`` / ``BRIDGE_RATE_BURST`` (per token and web
process; 0 turns the limit off) and ``BRIDGE_MAX_BACKLOG`` (SCIM writes answer 429 above
it; 0 turns it off). Fixed request limits, each a constant where it is enforced:

- ``bridge.scim.filter``: MAX_FILTER_LENGTH (8192 characters), MAX_FILTER_DEPTH (16 nested
  groups), MAX_FILTER_TERMS (100 comparisons): ``invalidFilter``; target scope filters too.
- ``bridge.scim.patch``: MAX_PATCH_OPERATIONS (1000 per request): ``invalidValue``.
- ``bridge.web.body``: MAX_JSON_DEPTH (32 levels) on /scim (``invalidSyntax``) and /admin.
- ``bridge.scim.query``: MAX_START_INDEX (2**53 - 1); ``bridge.scim.http``: MAX_VERSION.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.graph.settings import GraphSettings
from bridge.observability.masking import mask_url

DEFAULT_MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (RFC 7644 §3.7 ``maxPayloadSize`` for /Bulk too)."""

DEFAULT_BULK_MAX_OPERATIONS = 1000
"""Most operations one /Bulk request may carry (advertised in /ServiceProviderConfig)."""

DEFAULT_MAX_RESULTS = 1000
"""Largest page a list request returns, whatever ``count`` asks (RFC 7644 §3.4.2.4)."""

DEFAULT_RETRY_MAX_ATTEMPTS = 8
"""Attempts of one delivery before it is dead-lettered (backoff 1 s, 2 s, 4 s … ±50 %)."""

DEFAULT_RETRY_BASE_SECONDS = 1.0
"""First retry delay of a failed delivery; doubles with each attempt, capped at 5 minutes."""

DEFAULT_BREAKER_THRESHOLD = 5
"""Consecutive failed deliveries that quarantine a target (its deliveries are then held)."""

DEFAULT_BREAKER_PROBE_SECONDS = 30
"""How often a quarantined target is probed; it resumes when a probe succeeds."""

DEFAULT_REDIS_TIMEOUT_SECONDS = 5.0
"""How long one Redis command may take before it fails (a SCIM request then answers 503)."""

DEFAULT_WORKER_THREADS = 8
"""Delivery lanes per worker process: jobs of different targets run side by side, so a slow
target holds at most its own concurrency's worth of them."""

DEFAULT_TARGET_CONCURRENCY = 2
"""Delivery jobs of one target that may be queued or running at once (per lane kind)."""

DEFAULT_TARGET_CONNECT_TIMEOUT = 5.0
"""Seconds to open a connection to a target."""

DEFAULT_TARGET_READ_TIMEOUT = 10.0
"""Seconds a target may take to answer one request."""

DEFAULT_JOB_HEARTBEAT_SECONDS = 5
"""How often a worker tells Redis that the jobs it runs are still alive."""

DEFAULT_JOB_LOST_SECONDS = 15
"""A job whose worker has not heart-beaten for this long is run again by another worker."""

DEFAULT_MAINTENANCE_SECONDS = 5
"""How often each worker looks for lost jobs and stale registrations."""

DEFAULT_WORKER_TTL_SECONDS = 60
"""A worker that stops heart-beating disappears from the registry after this long."""

DEFAULT_RATE_LIMIT = 1000.0
"""Requests per second each bearer token may make to one web process (BRIDGE_RATE_LIMIT;
0 turns the limit off); more is answered 429 with ``Retry-After``. Entra's provisioning
service sends a few tens per second, and one process serves about 500 (README,
benchmarks), so only a runaway client ever meets it."""

DEFAULT_RATE_BURST = 2000
"""Requests a token may make at once above its rate (BRIDGE_RATE_BURST): the bucket size."""

DEFAULT_MAX_BACKLOG = 100_000
"""Undelivered changes (``{prefix}:changes`` entries, or jobs queued on the delivery
queues) above which SCIM writes are answered 429 with ``Retry-After`` until the workers
catch up; reads still work (BRIDGE_MAX_BACKLOG; 0 turns it off)."""

DEFAULT_AUDIT_MAX_ENTRIES = 20_000
"""SCIM requests kept in the audit stream (``{prefix}:audit``, trimmed with MAXLEN ~);
0 turns the audit trail off (BRIDGE_AUDIT_MAX_ENTRIES)."""

DEFAULT_API_DOCS_PATH = "docs"
"""Where the admin API's Swagger UI is served, under /admin (BRIDGE_API_DOCS_PATH)."""

LOG_FORMATS = ("json", "text")
"""BRIDGE_LOG_FORMAT: one JSON object per line (the default, for log shippers) or a
human line (``serve.sh`` uses it for local runs)."""


@dataclass(frozen=True)
class Settings:
    """Everything the bridge can be configured with; see the README's configuration table."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "bridge"
    public_base_url: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    bulk_max_operations: int = DEFAULT_BULK_MAX_OPERATIONS
    max_results: int = DEFAULT_MAX_RESULTS
    extension_schema_files: tuple[str, ...] = ()
    extension_schemas: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    data_dir: str = "var"
    secret_keys: tuple[str, ...] = ()
    retry_max_attempts: int = DEFAULT_RETRY_MAX_ATTEMPTS
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD
    breaker_probe_seconds: int = DEFAULT_BREAKER_PROBE_SECONDS
    redis_timeout_seconds: float = DEFAULT_REDIS_TIMEOUT_SECONDS
    worker_threads: int = DEFAULT_WORKER_THREADS
    target_concurrency: int = DEFAULT_TARGET_CONCURRENCY
    target_connect_timeout: float = DEFAULT_TARGET_CONNECT_TIMEOUT
    target_read_timeout: float = DEFAULT_TARGET_READ_TIMEOUT
    job_heartbeat_seconds: int = DEFAULT_JOB_HEARTBEAT_SECONDS
    job_lost_seconds: int = DEFAULT_JOB_LOST_SECONDS
    maintenance_seconds: int = DEFAULT_MAINTENANCE_SECONDS
    worker_ttl_seconds: int = DEFAULT_WORKER_TTL_SECONDS
    rate_limit: float = DEFAULT_RATE_LIMIT
    rate_burst: int = DEFAULT_RATE_BURST
    max_backlog: int = DEFAULT_MAX_BACKLOG
    graph: GraphSettings = field(default_factory=GraphSettings)
    metrics_token: str = field(default="", repr=False)
    metrics_dir: str = ""
    worker_metrics_bind: str = ""
    log_format: str = "json"
    log_level: str = "INFO"
    audit_max_entries: int = DEFAULT_AUDIT_MAX_ENTRIES
    api_docs: bool = True
    api_docs_path: str = DEFAULT_API_DOCS_PATH
    swagger_ui_url: str = ""
    console_secret_key: str = field(default="", repr=False)
    """Signs the web console's session cookie (BRIDGE_CONSOLE_SECRET_KEY); unset, a key
    is derived from the first of BRIDGE_SECRET_KEYS (see bridge.console.auth)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``BRIDGE_*`` variables and ``REDIS_URL``."""
        env = os.environ if environ is None else environ
        files = tuple(p for p in env.get("BRIDGE_EXTENSION_SCHEMAS", "").split(",") if p.strip())
        return cls(
            redis_url=_redis_url(env.get("REDIS_URL", cls.redis_url)),
            key_prefix=env.get("BRIDGE_KEY_PREFIX", cls.key_prefix),
            public_base_url=env.get("BRIDGE_PUBLIC_URL", "").rstrip("/"),
            max_body_bytes=_int(env, "BRIDGE_MAX_BODY_BYTES", cls.max_body_bytes),
            bulk_max_operations=_int(env, "BRIDGE_BULK_MAX_OPERATIONS", cls.bulk_max_operations),
            max_results=_int(env, "BRIDGE_MAX_RESULTS", cls.max_results),
            extension_schema_files=files,
            extension_schemas=tuple(_load_schema_file(p.strip()) for p in files),
            data_dir=env.get("BRIDGE_DATA_DIR", cls.data_dir),
            secret_keys=tuple(
                k.strip() for k in env.get("BRIDGE_SECRET_KEYS", "").split(",") if k.strip()
            ),
            retry_max_attempts=_int(env, "BRIDGE_RETRY_MAX_ATTEMPTS", cls.retry_max_attempts),
            retry_base_seconds=_float(env, "BRIDGE_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            breaker_threshold=_int(env, "BRIDGE_BREAKER_THRESHOLD", cls.breaker_threshold),
            breaker_probe_seconds=_int(
                env, "BRIDGE_BREAKER_PROBE_SECONDS", cls.breaker_probe_seconds
            ),
            redis_timeout_seconds=_float(
                env, "BRIDGE_REDIS_TIMEOUT_SECONDS", cls.redis_timeout_seconds
            ),
            worker_threads=_int(env, "BRIDGE_WORKER_THREADS", cls.worker_threads),
            target_concurrency=_int(env, "BRIDGE_TARGET_CONCURRENCY", cls.target_concurrency),
            target_connect_timeout=_float(
                env, "BRIDGE_TARGET_CONNECT_TIMEOUT", cls.target_connect_timeout
            ),
            target_read_timeout=_float(env, "BRIDGE_TARGET_READ_TIMEOUT", cls.target_read_timeout),
            job_heartbeat_seconds=_int(
                env, "BRIDGE_JOB_HEARTBEAT_SECONDS", cls.job_heartbeat_seconds
            ),
            job_lost_seconds=_int(env, "BRIDGE_JOB_LOST_SECONDS", cls.job_lost_seconds),
            maintenance_seconds=_int(env, "BRIDGE_MAINTENANCE_SECONDS", cls.maintenance_seconds),
            worker_ttl_seconds=_int(env, "BRIDGE_WORKER_TTL_SECONDS", cls.worker_ttl_seconds),
            rate_limit=_float(env, "BRIDGE_RATE_LIMIT", cls.rate_limit),
            rate_burst=_int(env, "BRIDGE_RATE_BURST", cls.rate_burst),
            max_backlog=_int(env, "BRIDGE_MAX_BACKLOG", cls.max_backlog),
            graph=_graph(env),
            metrics_token=env.get("BRIDGE_METRICS_TOKEN", ""),
            metrics_dir=_metrics_dir(env.get("PROMETHEUS_MULTIPROC_DIR", "")),
            worker_metrics_bind=env.get("BRIDGE_WORKER_METRICS_BIND", ""),
            log_format=_log_format(env.get("BRIDGE_LOG_FORMAT", cls.log_format)),
            log_level=env.get("BRIDGE_LOG_LEVEL", cls.log_level).upper(),
            audit_max_entries=_int(env, "BRIDGE_AUDIT_MAX_ENTRIES", cls.audit_max_entries),
            api_docs=_flag(env, "BRIDGE_API_DOCS", cls.api_docs),
            api_docs_path=_docs_path(env.get("BRIDGE_API_DOCS_PATH", cls.api_docs_path)),
            swagger_ui_url=env.get("BRIDGE_SWAGGER_UI_URL", "").strip(),
            console_secret_key=env.get("BRIDGE_CONSOLE_SECRET_KEY", "").strip(),
        )


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class SettingError(ValueError):
    """A setting that cannot be used; the message names it and says what it should be."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise SettingError(f"{name} must be a whole number, not {value!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value is None or not value.strip():
        return default
    try:
        return float(value)
    except ValueError:
        raise SettingError(f"{name} must be a number, not {value!r}") from None


FLAGS = {
    "1": True,
    "true": True,
    "on": True,
    "yes": True,
    "0": False,
    "false": False,
    "off": False,
    "no": False,
}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in FLAGS:
        raise SettingError(f"{name} must be on or off, not {value!r}")
    return FLAGS[value]


def _docs_path(path: str) -> str:
    """The Swagger UI's path under /admin, without slashes around it."""
    path = path.strip().strip("/")
    if not path or not all(
        part.replace("-", "").replace("_", "").isalnum() for part in path.split("/")
    ):
        raise SettingError(f"BRIDGE_API_DOCS_PATH must be a path such as 'docs', not {path!r}")
    return path


def _redis_url(url: str) -> str:
    if not url.startswith(REDIS_SCHEMES):
        raise SettingError(
            f"REDIS_URL must start with {', '.join(REDIS_SCHEMES)} "
            f"(e.g. redis://127.0.0.1:6379/0), not {mask_url(url)!r}"
        )
    return url


class _Reads(dict[str, str]):
    """The environment, remembering the last name read (to name a bad Graph setting)."""

    last = ""

    def get(self, name: str, default: Any = None) -> Any:
        """``dict.get``, noting ``name``."""
        self.last = name
        return super().get(name, default)


def _graph(env: Mapping[str, str]) -> GraphSettings:
    reads = _Reads(env)
    try:
        return GraphSettings.from_env(reads)
    except ValueError as exc:
        raise SettingError(f"{reads.last} is invalid: {exc}") from None


def _load_schema_file(path: str) -> dict[str, Any]:
    """A custom extension schema, as an RFC 7643 §7 JSON document, with ``appliesTo``."""
    try:
        schema: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SettingError(f"BRIDGE_EXTENSION_SCHEMAS: cannot read {path}: {exc}") from None
    return schema


def _log_format(value: str) -> str:
    value = value.strip().lower()
    if value not in LOG_FORMATS:
        raise SettingError(
            f"BRIDGE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}"
        )
    return value


def _metrics_dir(path: str) -> str:
    """prometheus-client's multiprocess directory must exist before the first count."""
    if path and not os.path.isdir(path):
        raise SettingError(
            f"PROMETHEUS_MULTIPROC_DIR={path} is not a directory: create it, empty, for the "
            "bridge's processes on this machine (or unset it)"
        )
    return path
