"""The process's Redis clients (bridge.runtime.services.connect, connect_for_blocking)."""

from __future__ import annotations

import redis

from bridge.runtime.services import connect, connect_for_blocking


def test_new_connections_share_one_client_description(settings):
    # built once per process: redis-py would read the package metadata for each connection
    first, second = connect(settings), connect_for_blocking(settings)
    described = [c.connection_pool.connection_kwargs["driver_info"] for c in (first, second)]
    assert described[0] is described[1]
    assert (described[0].name, described[0].lib_version) == ("redis-py", redis.__version__)
    assert first.ping() and second.ping()
    first.close()
    second.close()
