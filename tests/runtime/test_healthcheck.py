"""The containers' health check (bridge.runtime.healthcheck): web and worker roles."""

from __future__ import annotations

import dataclasses
import socket

from rq import Queue, Worker

from bridge.runtime import healthcheck
from bridge.runtime.embedded_redis import free_port
from tests.live_server import serve


def test_web_is_healthy_while_readyz_answers(app):
    with serve(app, quiet=True) as url:
        assert healthcheck.check_web(url.removeprefix("http://")) == ""


def test_web_is_unhealthy_when_nothing_answers():
    assert "/readyz" in healthcheck.check_web(f"127.0.0.1:{free_port()}")


def lane(redis_client, name: str) -> Worker:
    worker = Worker([Queue("q", connection=redis_client)], name=name, connection=redis_client)
    worker.register_birth()
    return worker


def test_a_worker_is_healthy_while_a_lane_of_its_host_beats(settings, redis_client):
    lane(redis_client, "box-1.bridge.0")
    assert healthcheck.check_worker(settings, "box") == ""


def test_a_worker_without_a_lane_of_its_host_is_unhealthy(settings, redis_client):
    lane(redis_client, "other-1.bridge.0")
    assert healthcheck.check_worker(settings, "box") == "no worker lane of box is registered"


def test_a_worker_whose_lanes_stopped_beating_is_unhealthy(settings, redis_client):
    worker = lane(redis_client, "box-1.bridge.0")
    redis_client.hset(worker.key, "last_heartbeat", "2020-01-01T00:00:00.000000Z")
    assert "last beat" in healthcheck.check_worker(settings, "box")


def test_a_worker_that_cannot_reach_redis_is_unhealthy(settings):
    dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert healthcheck.check_worker(dead, socket.gethostname()).startswith("cannot reach Redis")


def test_the_role_is_read_from_the_containers_main_process(tmp_path):
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/usr/bin/tini\0--\0python\0-m\0workers.run\0deliver\0")
    assert healthcheck.role_of_main_process(cmdline) == "worker"
    cmdline.write_bytes(b"python\0-m\0bridge.runtime.web\0")
    assert healthcheck.role_of_main_process(cmdline) == "web"


def test_an_unknown_role_is_unhealthy(settings, capsys):
    assert healthcheck.main(["cache"]) == 1
    assert "usage" in capsys.readouterr().out
