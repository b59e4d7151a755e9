"""What the bridge is doing, at a glance: directory size, change stream, queues, workers,
targets and the last resync. Read by ``GET /admin/status`` and ``flask --app app status``."""

from __future__ import annotations

from rq import Worker
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bridge.admin.service import TargetAdmin
from bridge.events import GROUP
from bridge.extension import Bridge
from bridge.graph.runner import SCOPE
from bridge.resync import Runs


def overview(state: Bridge) -> dict:
    r = state.redis
    directory = state.directory
    stream = {"length": r.xlen(directory.changes_key), "pending": 0}
    if r.exists(directory.changes_key):
        for group in r.xinfo_groups(directory.changes_key):
            if group["name"] in (GROUP, GROUP.encode()):
                stream["pending"] = int(group["pending"])
    queues = {}
    for name, queue in state.queues.items():
        queues[name] = {
            "queued": queue.count,
            "running": StartedJobRegistry(queue=queue).count,
            "scheduled": ScheduledJobRegistry(queue=queue).count,
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
            **admin.status(config["id"]),
        }
        for config in state.targets.configs()
    ]
    return {
        "directory": {"users": directory.count("user"), "groups": directory.count("group")},
        "changes": stream,
        "queues": queues,
        "workers": workers,
        "targets": targets,
        "resync": Runs(r, state.settings.key_prefix).get(SCOPE),
        "graph_configured": state.settings.graph.configured,
    }
