"""Run the whole bridge on one machine: ``python -m bridge.serve``.

Starts an embedded Redis (when REDIS_URL is unset), gunicorn serving the SCIM endpoint,
and one RQ worker; creates a first SCIM token if none exists and prints the SCIM URL and
token. Ctrl-C (or SIGTERM) stops everything cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from bridge.config import Settings
from bridge.embedded_redis import EmbeddedRedis
from bridge.secrets import SecretBox
from bridge.tokens import TokenStore

DEFAULT_BIND = "127.0.0.1:8000"
EMBEDDED_REDIS_PORT = 6390
"""The embedded Redis's port when free, so var/bridge.env stays valid across restarts."""

SHUTDOWN_GRACE = 20.0
"""Seconds children get to finish after SIGTERM before they are killed."""


def main() -> int:
    env = dict(os.environ)
    settings = Settings.from_env(env)
    embedded = None
    if "REDIS_URL" not in env:
        embedded = EmbeddedRedis(
            Path(settings.data_dir) / "redis",
            port=_int(env, "BRIDGE_REDIS_PORT") or _free_or_none(EMBEDDED_REDIS_PORT),
        )
        embedded.start()
        env["REDIS_URL"] = embedded.url
        settings = Settings.from_env(env)
    if not env.get("BRIDGE_SECRET_KEYS"):
        env["BRIDGE_SECRET_KEYS"] = _local_secret_key(Path(settings.data_dir))
        settings = Settings.from_env(env)
    bind = env.get("BRIDGE_BIND", DEFAULT_BIND)
    children: list[subprocess.Popen] = []
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        token = _first_token(settings)
        env_file = _write_env_file(Path(settings.data_dir), env)
        children.append(_start_web(env, bind))
        for role in ("deliver", "sync"):
            worker = [sys.executable, "-m", "workers.run", role]
            children.append(subprocess.Popen(worker, env=env, start_new_session=True))
        _announce(settings, bind, token, embedded, env_file)
        while not stopping:
            if any(child.poll() is not None for child in children):
                print("a bridge process exited; stopping", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        _stop_all(children)
        if embedded:
            embedded.stop()


def _start_web(env: dict, bind: str) -> subprocess.Popen:
    workers = env.get("WEB_CONCURRENCY", "4")
    threads = env.get("BRIDGE_WEB_THREADS", "2")
    args = [
        sys.executable, "-m", "gunicorn", "app:create_app()",
        "--bind", bind, "--workers", workers,
        "--worker-class", "gthread", "--threads", threads,
        "--keep-alive", "5", "--reuse-port",
        "--access-logfile", "-" if env.get("BRIDGE_ACCESS_LOG") else "/dev/null",
    ]  # fmt: skip
    return subprocess.Popen(args, env=env, start_new_session=True)


def _first_token(settings: Settings) -> str | None:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        store = TokenStore(client, settings.key_prefix)
        if store.any():
            return None
        return store.create("entra")[1]
    finally:
        client.close()


def _announce(settings: Settings, bind: str, token: str | None, embedded, env_file: Path) -> None:
    base = settings.public_base_url or f"http://{bind}"
    print("\nEntra ID SCIM bridge is running")
    print(f"  Tenant URL:    {base}/scim/v2")
    if token:
        print(f"  Secret Token:  {token}")
    else:
        print("  Secret Token:  (tokens exist; create one with: flask --app app tokens create)")
    if embedded:
        print(f"  Redis:         embedded, {embedded.url}, data in {embedded.data_dir}")
    print(f"  CLI:           set -a; . {env_file}; set +a; flask --app app --help")
    print("Press Ctrl-C to stop.\n", flush=True)


def _stop_all(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + SHUTDOWN_GRACE
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def _write_env_file(data_dir: Path, env: dict) -> Path:
    """The settings this instance runs with, for the operator's CLI (mode 0600)."""
    path = data_dir / "bridge.env"
    data_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(n for n in env if n == "REDIS_URL" or n.startswith("BRIDGE_"))
    path.touch(mode=0o600)
    path.write_text("".join(f"{n}={env[n]}\n" for n in names))
    return path


def _local_secret_key(data_dir: Path) -> str:
    """The key that encrypts target secrets, kept beside the embedded data (mode 0600).

    Deployments set BRIDGE_SECRET_KEYS from their secret store instead.
    """
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = SecretBox.generate_key()
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def _free_or_none(port: int) -> int | None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


def _int(env: dict, name: str) -> int | None:
    return int(env[name]) if env.get(name) else None


if __name__ == "__main__":
    sys.exit(main())
