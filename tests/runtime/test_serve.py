"""``scripts/serve.sh`` (``python -m bridge.runtime.serve``) tells the truth.

It refuses a port in use and a bad setting before starting anything, prints "running" only
once /readyz answers, exits 1 when the web tier cannot start, starts a killed embedded
Redis again, ignores a REDIS_URL that came from its own var/bridge.env, and stops every
process on SIGTERM. The run below is one real bridge on 127.0.0.1 (one web process, small
workers), shared by the tests of this module and stopped by its PID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bridge.runtime import envfile, serve
from bridge.runtime.embedded_redis import COMPACT_HASH_ENTRIES, EmbeddedRedis, free_port
from bridge.runtime.envfile import EMBEDDED_MARK
from bridge.runtime.processes import die_with_parent

REPO = Path(__file__).resolve().parents[2]

SMALL = {
    "WEB_CONCURRENCY": "1",
    "BRIDGE_WEB_THREADS": "2",
    "BRIDGE_WORKER_THREADS": "1",
    "BRIDGE_GRAPH_INTERVAL_MINUTES": "0",
    "BRIDGE_REDIS_TIMEOUT_SECONDS": "2",
}
"""A bridge as small as it gets: it starts in a few seconds."""

START_TIMEOUT = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_") and k != "REDIS_URL"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return {**env, **SMALL, **extra}


class Run:
    """``python -m bridge.runtime.serve`` in its own session; its output read as it comes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge.runtime.serve"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, preexec_fn=die_with_parent(),
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 40.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise

    def output(self) -> str:
        self.reader.join(10)
        return "\n".join(self.lines)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status)
    except OSError:
        return 0


# --- refused before anything starts ---------------------------------------------------------


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        bind = f"127.0.0.1:{holder.getsockname()[1]}"
        run = Run(clean_env(BRIDGE_BIND=bind, BRIDGE_DATA_DIR=str(tmp_path / "var")))
        assert run.finish() == 1
    assert f"{bind} is in use" in run.output()
    assert not (tmp_path / "var").exists()


def test_a_port_held_with_so_reuseport_counts_as_in_use():
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        bind = f"127.0.0.1:{holder.getsockname()[1]}"
        assert (
            serve._bind_problem(bind)
            == f"{bind} is in use: stop what listens there, or set BRIDGE_BIND"
        )


def test_an_address_that_is_not_here_is_named(tmp_path):
    assert "cannot listen on BRIDGE_BIND=192.0.2.1:8000" in serve._bind_problem("192.0.2.1:8000")


def test_a_bad_setting_is_one_line_and_exit_status_2(tmp_path):
    bind = f"127.0.0.1:{free_port()}"
    env = clean_env(BRIDGE_BIND=bind, BRIDGE_DATA_DIR=str(tmp_path), BRIDGE_MAX_BACKLOG="lots")
    run = Run(env)
    assert run.finish() == 2
    assert run.output() == "bad setting: BRIDGE_MAX_BACKLOG must be a whole number, not 'lots'"


def test_the_embedded_redis_port_is_free_again_right_after_a_stop(tmp_path):
    first = EmbeddedRedis(tmp_path / "redis", appendonly=False)
    first.start()
    client = redis.Redis(port=first.port)
    client.set("k", "v")
    first.stop()  # the server closes the connection: its port is in TIME_WAIT
    client.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", first.port))  # without SO_REUSEADDR it is taken
    assert serve._free_or_none(first.port) == first.port
    again = EmbeddedRedis(tmp_path / "redis", port=first.port, appendonly=False)
    again.start()
    again.stop()


def test_the_embedded_redis_keeps_only_small_hashes_compact(tmp_path):
    """A group's members are a hash: past COMPACT_HASH_ENTRIES it is a hash table, whose
    fields Redis finds without scanning."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False)
    server.start()
    client = redis.Redis(port=server.port)
    try:
        client.hset("small", mapping={f"m{i}": "user|" for i in range(COMPACT_HASH_ENTRIES)})
        client.hset("large", mapping={f"m{i}": "user|" for i in range(COMPACT_HASH_ENTRIES + 1)})
        assert client.object("encoding", "small") in (b"ziplist", b"listpack")
        assert client.object("encoding", "large") == b"hashtable"
    finally:
        client.close()
        server.stop()


def test_a_web_tier_that_cannot_start_stops_serve_with_status_1(tmp_path):
    schema = {"id": "urn:example:ext", "name": "Ext", "attributes": []}
    paths = []
    for name in ("a.json", "b.json"):  # the same URN twice: create_app refuses it
        (tmp_path / name).write_text(json.dumps(schema))
        paths.append(str(tmp_path / name))
    env = clean_env(
        BRIDGE_BIND=f"127.0.0.1:{free_port()}",
        BRIDGE_DATA_DIR=str(tmp_path / "var"),
        BRIDGE_REDIS_PORT=str(free_port()),
        BRIDGE_EXTENSION_SCHEMAS=",".join(paths),
    )
    run = Run(env)
    assert run.finish(timeout=60) == 1
    output = run.output()
    assert "the web tier did not start" in output
    assert "is running" not in output


# --- one real bridge --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bridge_run(tmp_path_factory) -> Iterator[tuple[Run, dict[str, str]]]:
    """A bridge whose shell had loaded an older var/bridge.env (REDIS_URL and its mark)."""
    folder = tmp_path_factory.mktemp("serve")
    stale = f"redis://127.0.0.1:{free_port()}/0"
    env = clean_env(
        BRIDGE_BIND=f"127.0.0.1:{free_port()}",
        BRIDGE_DATA_DIR=str(folder / "var"),
        BRIDGE_REDIS_PORT=str(free_port()),
        REDIS_URL=stale,
        **{EMBEDDED_MARK: stale},
    )
    run = Run(env)
    try:
        run.wait_for("is running")
        yield run, env
    finally:
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGTERM)
            try:
                run.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(run.process.pid, signal.SIGKILL)


def readyz(env: dict[str, str]) -> str:
    return f"http://{env['BRIDGE_BIND']}/readyz"


def test_running_is_printed_once_readyz_answers(bridge_run):
    run, env = bridge_run
    assert get(readyz(env)) == 200
    assert run.lines.index("Entra ID SCIM bridge is running") > 0


def test_a_redis_url_from_its_own_env_file_still_means_the_embedded_redis(bridge_run):
    run, env = bridge_run
    line = run.wait_for(r"Redis:\s+embedded")
    assert f"127.0.0.1:{env['BRIDGE_REDIS_PORT']}" in line
    written = envfile.read(Path(env["BRIDGE_DATA_DIR"]) / "bridge.env")
    assert written["REDIS_URL"] == written[EMBEDDED_MARK] != env["REDIS_URL"]


def test_the_banners_cli_line_works_in_a_new_shell(bridge_run, tmp_path):
    run, _ = bridge_run
    line = run.wait_for(r"CLI:\s+")
    command_line = line.split("CLI:", 1)[1].strip().replace("--help", "targets list")
    result = subprocess.run(
        ["sh", "-c", command_line], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "none\n"), result.stderr


def test_a_killed_embedded_redis_is_started_again_on_its_data(bridge_run):
    run, env = bridge_run
    url = envfile.read(Path(env["BRIDGE_DATA_DIR"]) / "bridge.env")["REDIS_URL"]
    client = redis.Redis.from_url(url)
    client.set("survives", "yes")
    time.sleep(1.2)  # appendfsync everysec
    pid = client.info("server")["process_id"]
    seen = len(run.lines)
    os.kill(pid, signal.SIGKILL)
    run.wait_for("the redis exited", timeout=10, start=seen)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.info("server")["process_id"] != pid:
                break
        except redis.ConnectionError:
            pass
        time.sleep(0.1)
    assert client.get("survives") == b"yes"
    while get(readyz(env)) != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get(readyz(env)) == 200
    client.close()


def test_sigterm_stops_every_process_and_exits_0(bridge_run):
    run, _ = bridge_run
    children = children_of(run.process.pid)
    assert len(children) == 4  # redis, web, deliver worker, sync worker
    os.killpg(run.process.pid, signal.SIGTERM)
    assert run.finish() == 0
    assert not [pid for pid in children if alive(pid)]
