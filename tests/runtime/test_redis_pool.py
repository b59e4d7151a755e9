"""The bridge's Redis pool (bridge.runtime.redis_pool): redis-py's take-and-return of
connections, against a real Redis."""

from __future__ import annotations

import os

import pytest
import redis

from bridge.runtime.redis_pool import LeanConnectionPool, from_url


@pytest.fixture
def client(redis_server, redis_client):
    made = from_url(redis_server.url, socket_timeout=5)
    yield made
    made.close()


def test_commands_in_turn_reuse_one_connection(client):
    for n in range(5):
        client.set("k", n)
    pool = client.connection_pool
    assert isinstance(pool, LeanConnectionPool)
    assert len(pool._available_connections) == 1
    assert not pool._in_use_connections


def test_a_connection_redis_dropped_is_replaced(client, redis_client):
    client.set("k", "v")
    redis_client.client_kill_filter(_type="normal", skipme=True)
    assert client.get("k") == b"v"


def test_a_connection_from_another_pool_is_not_taken_in(client, redis_server):
    other = from_url(redis_server.url)
    stranger = other.connection_pool.get_connection()
    client.connection_pool.release(stranger)  # not ours: ignored
    assert stranger not in client.connection_pool._available_connections
    other.connection_pool.release(stranger)
    other.close()


def test_a_forked_child_opens_its_own_connections(client):
    client.set("k", "parent")
    parent_connection = client.connection_pool._available_connections[0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the pool notices the fork and starts afresh
        ok = client.get("k") == b"parent" and (
            parent_connection not in client.connection_pool._available_connections
        )
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert client.get("k") == b"parent"  # the parent's connection still works


def test_closing_the_client_closes_its_pool(redis_server):
    made = from_url(redis_server.url)
    made.ping()
    connection = made.connection_pool._available_connections[0]
    made.close()
    assert connection._sock is None


def test_a_redis_that_is_down_fails_the_command_and_returns_the_connection(redis_server):
    made = from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        made.ping()
    assert not made.connection_pool._in_use_connections
    made.close()
