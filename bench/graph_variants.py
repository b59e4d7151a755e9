"""What-if patches of the reconcile worker, for the Graph resync benchmark only.

    python -m bench.graph_resync --variant scope8

Each variant monkeypatches the worker process (``bench.graph_worker --variant NAME``) to
measure a possible change before it is made in ``bridge/``. Nothing here is used by the
bridge itself.

``scopeN``: ``Reconciler._scope`` lists the members of the assigned groups with up to N
requests in flight (asyncio tasks sharing the one GraphSource) instead of one group at a
time. Same result: the union of the direct assignments and every group's user members.
"""

from __future__ import annotations

import asyncio
import re

from bridge.graph.reconcile import Reconciler
from bridge.graph.source import GraphSource

MAX_CONCURRENCY = 64


def _concurrent_scope(concurrency: int):
    async def _scope(self: Reconciler, source: GraphSource) -> tuple[set[str], set[str]]:
        self._phase("scope")
        users, groups = await source.assigned_principals()
        users = set(users)
        gate = asyncio.Semaphore(concurrency)

        async def members(group_id: str) -> list[str]:
            async with gate:
                out: list[str] = []
                async for batch in source.group_member_ids(group_id):
                    out.extend(batch)
                return out

        for found in await asyncio.gather(*(members(g) for g in sorted(groups))):
            users.update(found)
        return users, set(groups)

    return _scope


def apply(name: str) -> None:
    match = re.fullmatch(r"scope(\d+)", name)
    if match and 1 <= int(match.group(1)) <= MAX_CONCURRENCY:
        Reconciler._scope = _concurrent_scope(int(match.group(1)))
        return
    raise SystemExit(f"unknown variant {name!r}: scope1 .. scope{MAX_CONCURRENCY}")
