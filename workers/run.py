"""Start a worker: ``python -m workers.run [all|deliver|sync]``.

A worker process runs delivery lanes (RQ SimpleWorkers in threads: no fork per job, so
connection pools, OAuth2 and Graph tokens and parsed target configurations are shared),
the change-stream dispatcher, RQ's scheduler and the reconciliation ticker; see
:mod:`workers.process`. Run as many as needed, on as many machines as needed, all
pointing at the same REDIS_URL.
"""

from __future__ import annotations

import logging
import sys

from bridge.runtime.config import Settings
from bridge.runtime.services import build
from workers.context import install
from workers.process import ROLES, WorkerProcess


def main() -> None:
    """Start a worker process of the role given on the command line."""
    role = sys.argv[1] if len(sys.argv) > 1 else "all"
    if role not in ROLES:
        raise SystemExit(f"usage: python -m workers.run [{'|'.join(ROLES)}]")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ctx = build(Settings.from_env())
    install(ctx)
    WorkerProcess(ctx, role).run()


if __name__ == "__main__":
    main()
