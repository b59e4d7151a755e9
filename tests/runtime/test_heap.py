"""Start-up objects frozen out of the collector's full passes (bridge.runtime.heap).

Each test runs in a process of its own: freezing is for the life of a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**environ, **env},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_settling_freezes_every_object_alive_and_leaves_none_for_a_full_pass():
    out = run(
        "import gc\n"
        "from bridge.runtime import heap\n"
        "kept = [[] for _ in range(5000)]\n"
        "frozen = heap.settle()\n"
        "print(frozen >= 5000, frozen == gc.get_freeze_count(), len(gc.get_objects()))\n"
    )
    assert out == "True True 0"


def test_settling_collects_start_up_garbage_before_freezing():
    out = run(
        "import gc, weakref\n"
        "from bridge.runtime import heap\n"
        "class Node: pass\n"
        "a, b = Node(), Node()\n"
        "a.other, b.other = b, a\n"
        "gone = weakref.ref(a)\n"
        "del a, b\n"
        "heap.settle()\n"
        "print(gone() is None)\n"
    )
    assert out == "True"


def test_the_served_factory_builds_a_working_app_with_its_start_up_frozen(redis_server):
    out = run(
        "import gc\n"
        "from app import serve_app\n"
        "app = serve_app()\n"
        "frozen = gc.get_freeze_count()\n"
        "status = app.test_client().get('/healthz').status_code\n"
        "print(frozen > 10000, status)\n",
        REDIS_URL=redis_server.url,
    )
    assert out == "True 200"
