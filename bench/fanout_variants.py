"""What-if worker for the fan-out benchmark: ``workers.run`` with dispatcher changes patched in.

    python -m bench.fanout_variants --linger-ms 25 --combine

Not production code: it measures what two dispatcher changes would buy before anyone
makes them in ``bridge/events.py``.

* ``--linger-ms N``: after a read that returned fewer than BATCH entries, wait N ms and
  take what arrived meanwhile, so that one job carries several changes (at 100 writes/s a
  read otherwise returns one entry, and each job carries one resource).
* ``--combine``: one job per read for all targets (per queue) instead of one per target;
  the job delivers to each target in turn, as ``workers.deliver.deliver`` would.
"""

from __future__ import annotations

import argparse
import sys
import time

from bridge import events
from bridge.jobs import ITEMS_PER_JOB, JOB_OPTIONS

COMBINED_JOB = "bench.fanout_variants.deliver_combined"


def deliver_combined(plan: list[list]) -> dict:
    """Run ``workers.deliver.deliver`` for each [target id, items] pair."""
    from workers.deliver import deliver

    return {target_id: deliver(target_id, items) for target_id, items in plan}


def patch(linger_ms: float, combine: bool) -> None:
    linger = linger_ms / 1000

    def poll(self, block_ms: int | None = 1000) -> int:
        reply = self.redis.xreadgroup(
            events.GROUP, self.consumer, {self.stream: ">"}, count=events.BATCH, block=block_ms
        )
        entries = reply[0][1] if reply else []
        if entries and linger and len(entries) < events.BATCH:
            time.sleep(linger)
            more = self.redis.xreadgroup(
                events.GROUP,
                self.consumer,
                {self.stream: ">"},
                count=events.BATCH - len(entries),
                block=None,
            )
            if more:
                entries += more[0][1]
        self.dispatch(entries)
        return len(entries)

    def dispatch(self, entries: list) -> None:
        if not entries:
            return
        plan = self.plan([events._fields(f) for _, f in entries])
        by_queue: dict[str, list[list]] = {}
        for (target_id, queue), items in plan.items():
            for start in range(0, len(items), ITEMS_PER_JOB):
                by_queue.setdefault(queue, []).append(
                    [target_id, items[start : start + ITEMS_PER_JOB]]
                )
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.multi()
            for queue, pairs in by_queue.items():
                self.queues[queue].enqueue(COMBINED_JOB, pairs, pipeline=pipe, **JOB_OPTIONS)
            ids = [entry_id for entry_id, _ in entries]
            pipe.xack(self.stream, events.GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()

    events.Dispatcher.poll = poll
    if combine:
        events.Dispatcher.dispatch = dispatch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fanout_variants")
    p.add_argument("--linger-ms", type=float, default=0.0)
    p.add_argument("--combine", action="store_true")
    args = p.parse_args(argv)
    patch(args.linger_ms, args.combine)
    from workers import run

    run.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
