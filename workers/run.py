"""Start a worker: ``python -m workers.run [all|deliver|sync]``.

A worker process runs delivery lanes (RQ SimpleWorkers in threads: no fork per job, so
connection pools, OAuth2 and Graph tokens and parsed target configurations are shared),
the change-stream dispatcher, RQ's scheduler and the reconciliation ticker; see
:mod:`workers.process`. Run as many as needed, on as many machines as needed, all
pointing at the same REDIS_URL.

Logs go out in BRIDGE_LOG_FORMAT, like the web tier's. With BRIDGE_WORKER_METRICS_BIND
(``0.0.0.0:9101``) and BRIDGE_METRICS_TOKEN set, the process serves its own metrics at
``/metrics`` there, for workers that do not share a machine (and PROMETHEUS_MULTIPROC_DIR)
with the web tier.
"""

from __future__ import annotations

import sys

from bridge.observability import logs, scrape
from bridge.runtime import heap
from bridge.runtime.config import Settings
from bridge.runtime.services import build
from workers.context import install
from workers.process import ROLES, WorkerProcess


def main() -> None:
    """Start a worker process of the role given on the command line."""
    role = sys.argv[1] if len(sys.argv) > 1 else "all"
    if role not in ROLES:
        raise SystemExit(f"usage: python -m workers.run [{'|'.join(ROLES)}]")
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    ctx = build(settings)
    install(ctx)
    if settings.worker_metrics_bind and settings.metrics_token:
        scrape.serve_worker_metrics(
            settings.worker_metrics_bind, settings.metrics_token, settings.metrics_dir
        )
    process = WorkerProcess(ctx, role)
    heap.settle()  # see bridge.runtime.heap: start-up objects out of full collections
    process.run()


if __name__ == "__main__":
    main()
