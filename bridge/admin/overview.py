"""What the bridge is doing, at a glance: directory size, change stream, queues, workers,
targets and the last resync. Read by ``GET /admin/status`` and ``flask --app app status``."""

from __future__ import annotations

from typing import Any

from rq import Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bridge.admin.targets import TargetAdmin
from bridge.graph.runner import SCOPE
from bridge.graph.runs import Runs
from bridge.observability.health import stream_state
from bridge.runtime.services import Services


def overview(state: Services) -> dict[str, Any]:
    """The status document: directory counts, change stream, queues, workers, targets, resync."""
    r = state.redis
    directory = state.directory
    stream = stream_state(r, state.settings.key_prefix)
    waiting = state.jobs.waiting_in_lanes(r)
    queues = {}
    for name, queue in state.queues.items():
        queues[name] = {
            "queued": queue.count,
            "waiting": waiting.get(name, 0),
            "running": StartedJobRegistry(queue=queue).count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,  # type: ignore[no-untyped-call]
            "failed": FailedJobRegistry(queue=queue).count,
        }
    workers = [
        {"name": w.name, "queues": w.queue_names(), "state": str(w.get_state())}
        for w in Worker.all(connection=r)
    ]
    admin = TargetAdmin.of(state)
    targets = [
        {
            "name": config["name"],
            "enabled": config.get("enabled", True),
            "shadow": config.get("shadow", False),
            "pending": state.deliveries.pending(config["id"]),
            **admin.status(config["id"]),
        }
        for config in state.targets.configs()
    ]
    return {
        "directory": {"users": directory.count("user"), "groups": directory.count("group")},
        "changes": {
            "length": stream.length,
            "pending": stream.pending,
            "oldest_age_seconds": stream.oldest_age_seconds,
            "dispatchers": stream.dispatchers,
            "state": stream.state,
        },
        "queues": queues,
        "workers": workers,
        "targets": targets,
        "resync": Runs(r, state.settings.key_prefix).get(SCOPE),
        "graph_configured": state.settings.graph.configured,
    }
