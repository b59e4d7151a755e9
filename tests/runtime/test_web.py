"""``python -m bridge.runtime.web``: granian with its settings from the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bridge.runtime import web
from bridge.runtime.config import SettingError
from bridge.runtime.embedded_redis import free_port


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_processes_threads_and_address_come_from_the_environment():
    args = web.command(
        {"BRIDGE_BIND": "0.0.0.0:9000", "WEB_CONCURRENCY": "3", "BRIDGE_WEB_THREADS": "6"}
    )
    assert (option(args, "--host"), option(args, "--port")) == ("0.0.0.0", "9000")
    assert (option(args, "--workers"), option(args, "--blocking-threads")) == ("3", "6")
    assert option(args, "--factory") == "app:serve_app"


def test_the_defaults_are_two_processes_of_four_threads():
    args = web.command({})
    assert (option(args, "--workers"), option(args, "--blocking-threads")) == ("2", "4")
    assert "--no-access-log" in args


@pytest.mark.parametrize(
    ("env", "name"),
    [({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"), ({"BRIDGE_WEB_THREADS": "many"}, "BRIDGE_WEB_THREADS"),
     ({"BRIDGE_BIND": "8000"}, "BRIDGE_BIND")],
)  # fmt: skip
def test_a_bad_web_setting_names_itself(env, name):
    with pytest.raises(SettingError, match=name):
        web.command(env)


def test_a_bad_setting_stops_the_web_tier_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("BRIDGE_RATE_BURST", "lots")
    with pytest.raises(SystemExit) as exited:
        web.main()
    assert exited.value.code == 2
    assert (
        capsys.readouterr().err
        == "bad setting: BRIDGE_RATE_BURST must be a whole number, not 'lots'\n"
    )


def test_the_web_tier_serves_readyz_and_stops_on_sigterm(redis_server, redis_client, tmp_path):
    bind = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(
        REDIS_URL=redis_server.url, BRIDGE_BIND=bind, WEB_CONCURRENCY="1", BRIDGE_WEB_THREADS="1"
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "web.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.runtime.web"], cwd=Path(__file__).resolve().parents[2],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline, status = time.monotonic() + 30, 0
        while time.monotonic() < deadline and not status:
            try:
                with urllib.request.urlopen(f"http://{bind}/readyz", timeout=1) as answer:
                    status = answer.status
            except OSError:
                time.sleep(0.1)
        assert status == 200, (tmp_path / "web.log").read_text()
        process.send_signal(signal.SIGTERM)  # granian itself: web.main exec'd it
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()
