"""Redis killed (kill -9) and restarted, or replaced by an empty one, under load."""

from __future__ import annotations

import shutil
import threading
import time

import httpx

from tests.factories import entra_user
from tests.faults.client import BridgeClient
from tests.faults.invariant import converge

OUTAGE_SECONDS = 3.0
LOAD_THREADS = 4
LOAD_SECONDS = 3.0
"""How long the SCIM write load runs before the kill and after the restart."""


class WriteLoad:
    """Entra creating users without pause; remembers each one acknowledged with a 201."""

    def __init__(self, bridge: BridgeClient) -> None:
        self.stack = bridge.stack
        self.acked: list[str] = []
        self.refused = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(LOAD_THREADS)]

    def __enter__(self) -> WriteLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self) -> None:
        headers = {
            "Authorization": f"Bearer {self.stack.scim_token}",
            "Content-Type": "application/scim+json",
        }
        with httpx.Client(base_url=self.stack.url, timeout=3, headers=headers) as http:
            while not self.stop.is_set():
                try:
                    response = http.post("/scim/v2/Users", json=entra_user())
                except httpx.HTTPError:
                    self.refused += 1
                    time.sleep(0.05)
                    continue
                if response.status_code == 201:
                    self.acked.append(response.json()["id"])
                else:
                    self.refused += 1
                    time.sleep(0.05)


def test_redis_kill_and_restart_under_load_loses_and_strands_nothing(make_stack, fakes):
    stack = make_stack()
    bridge = BridgeClient(stack)
    try:
        hook = fakes.webhook(bridge)
        workers = list(stack.workers)
        with WriteLoad(bridge) as load:
            time.sleep(LOAD_SECONDS)
            stack.redis.kill()
            time.sleep(OUTAGE_SECONDS)
            stack.redis.start()
            time.sleep(LOAD_SECONDS)
        stored = {u["id"] for u in bridge.list("/Users")}
        lost = [uid for uid in load.acked if uid not in stored]
        assert load.acked and not lost, f"{len(lost)} of {len(load.acked)} acknowledged users lost"
        exited = [w.name for w in workers if not w.alive()]
        assert not exited, f"worker processes exited: {exited}"
        converge(bridge, [hook], timeout=30)
    finally:
        bridge.close()


def test_redis_coming_back_empty_delivers_new_users_and_lists_the_workers(make_stack, fakes):
    stack = make_stack()
    bridge = BridgeClient(stack)
    try:
        first = fakes.webhook(bridge)
        bridge.create_user()
        converge(bridge, [first])
        stack.redis.stop()
        shutil.rmtree(stack.redis.data_dir)
        stack.redis.start()
        stack.create_tokens()
        hook = fakes.webhook(bridge)
        for _ in range(3):
            bridge.create_user()
        converge(bridge, [hook], timeout=15)
        running = [w for w in stack.workers if w.alive()]
        assert len(bridge.status()["workers"]) >= len(running), bridge.status()["workers"]
    finally:
        bridge.close()
