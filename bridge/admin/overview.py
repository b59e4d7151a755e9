"""What the bridge is doing, at a glance: directory size, change stream, queues, workers,
targets and the last resync. Read by ``GET /admin/status`` and ``flask --app app status``."""

from __future__ import annotations

from rq import Worker
from rq.rate_limit import RateLimitRegistry
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bridge.admin.targets import TargetAdmin
from bridge.delivery.dispatcher import GROUP
from bridge.delivery.jobs import PRIORITY_QUEUE, QUEUE
from bridge.graph.runner import SCOPE
from bridge.graph.runs import Runs
from bridge.runtime.services import Services


def overview(state: Services) -> dict:
    r = state.redis
    directory = state.directory
    stream = {"length": r.xlen(directory.changes_key), "pending": 0}
    if r.exists(directory.changes_key):
        for group in r.xinfo_groups(directory.changes_key):
            if group["name"] in (GROUP, GROUP.encode()):
                stream["pending"] = int(group["pending"])
    waiting = _waiting_in_lanes(state)
    queues = {}
    for name, queue in state.queues.items():
        queues[name] = {
            "queued": queue.count,
            "waiting": waiting.get(name, 0),
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
            "pending": state.deliveries.pending(config["id"]),
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


def _waiting_in_lanes(state: Services) -> dict[str, int]:
    """Delivery jobs waiting for a place in their target's lane, by the queue they go to."""
    prefix = f"{state.settings.key_prefix}:"
    lanes = [r for r in RateLimitRegistry.all(state.redis) if r.key.startswith(prefix)]
    pipe = state.redis.pipeline(transaction=False)
    for registry in lanes:
        pipe.zcard(registry.rate_limited_key)
    counts: dict[str, int] = {}
    for registry, count in zip(lanes, pipe.execute(), strict=True):
        queue = PRIORITY_QUEUE if registry.key.endswith(":deprovision") else QUEUE
        counts[queue] = counts.get(queue, 0) + int(count)
    return counts
