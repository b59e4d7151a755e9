"""The SCIM servers the bridge is measured against, side by side (``scim_load --peers``).

* **scimgateway** (jelhub/scimgateway, TypeScript on Bun): its ``plugin-loki`` in memory
  (``persistence: false``), a bearer token from the environment, logging off. Its code
  is never part of this repository: ``python -m bench.peers prepare`` checks it out and
  installs Bun and its dependencies under the peers folder.
* **scim2-server** (PyPI, requirements-dev.txt): in memory, served by gunicorn, one
  process (the store lives in it) with threads.

The peers folder is ``$BENCH_PEERS_DIR``, by default ``peers/`` beside the repository
(``/work/peers`` for a clone at ``/work/main``)::

    python -m bench.peers prepare    # npm install bun; clone scimgateway; bun install
    python -m bench.peers status     # what is found, or why not

``prepare`` clones ``--source`` (default: the GitHub repository) at ``--ref``; a machine
without access to GitHub can pass a local clone or mirror.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from bench import procs
from bench.fanout_drive import Child, python_module, wait_listening
from bench.server import REPO
from bridge.runtime.embedded_redis import free_port

PEERS_DIR = Path(os.environ.get("BENCH_PEERS_DIR") or REPO.parent / "peers")
SCIMGATEWAY_SOURCE = "https://github.com/jelhub/scimgateway.git"
SCIMGATEWAY_REF = "v6.1.18"
"""The release measured (commit 747173e)."""
BUN_VERSION = "1.4.5"
SCIM2_THREADS = 4
"""gunicorn gthread threads of scim2-server's one process."""


class Peer:
    """A SCIM server under test: where its SCIM endpoints are, how to start and stop it."""

    name = ""
    prefix = ""
    """Path before ``/Users`` and ``/Groups``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.child: Child | None = None

    def unavailable(self) -> str | None:
        """Why this peer cannot run here, or None."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        left = self.processes()
        if self.child is not None:
            self.child.stop()
        procs.kill(left)

    def processes(self) -> list[psutil.Process]:
        if self.child is None or not self.child.alive():
            return []
        return procs.tree(self.child.pid)

    def describe(self) -> str:
        raise NotImplementedError


# --- scimgateway ------------------------------------------------------------------------


def scimgateway_dir() -> Path:
    return PEERS_DIR / "scimgateway"


def bun_binary() -> Path | None:
    """Bun from ``$BENCH_BUN``, the peers folder's npm package, or the PATH."""
    candidates = [
        os.environ.get("BENCH_BUN", ""),
        str(PEERS_DIR / "node_modules" / "bun" / "bin" / "bun.exe"),
        shutil.which("bun") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


class Scimgateway(Peer):
    name = "scimgateway"
    prefix = ""

    def unavailable(self) -> str | None:
        home = scimgateway_dir()
        if bun_binary() is None:
            return f"no Bun under {PEERS_DIR} nor on the PATH (run: python -m bench.peers prepare)"
        if not (home / "lib" / "plugin-loki.ts").exists():
            return f"no checkout at {home} (run: python -m bench.peers prepare)"
        if not (home / "node_modules" / "lokijs").exists():
            return (
                f"its dependencies are not installed in {home} (run: python -m bench.peers prepare)"
            )
        return None

    def start(self) -> None:
        home = scimgateway_dir()
        self._write_config(home / "config" / "plugin-loki.json")
        bun = bun_binary()
        assert bun is not None
        env = {"BENCH_SCIMGATEWAY_TOKEN": self.token}
        args = [str(bun), str(home / "index.ts")]
        self.child = Child("scimgateway", args, env, self.workdir)
        self.child.start()
        wait_listening(self.child, self.port, "/ping")

    def _write_config(self, path: Path) -> None:
        """The shipped configuration with our port, our token (read from the environment),
        basic auth off and logging off (the bridge logs no access lines either)."""
        config = json.loads(path.read_text())
        gateway = config["scimgateway"]
        gateway["port"] = self.port
        gateway["localhostonly"] = True
        gateway["log"]["loglevel"] = {"file": "off", "console": "off"}
        gateway["auth"]["basic"] = []
        gateway["auth"]["bearerToken"] = [
            {"token": "process.env.BENCH_SCIMGATEWAY_TOKEN", "readOnly": False, "baseEntities": []}
        ]
        config["endpoint"]["entity"]["undefined"]["persistence"] = False
        path.write_text(json.dumps(config, indent=2))

    def describe(self) -> str:
        bun = bun_binary()
        version = _output([str(bun), "--version"]) if bun else "?"
        commit = _output(["git", "-C", str(scimgateway_dir()), "describe", "--tags", "--always"])
        return f"scimgateway {commit}, plugin-loki in memory, Bun {version}, one process"


# --- scim2-server -----------------------------------------------------------------------


class Scim2Server(Peer):
    name = "scim2-server"
    prefix = "/v2"

    def unavailable(self) -> str | None:
        try:
            import scim2_server  # noqa: F401 - only whether it is installed
        except ImportError as exc:
            return f"scim2-server is not installed ({exc}; pip install -r requirements-dev.txt)"
        return None

    def start(self) -> None:
        args = python_module(
            "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--worker-class", "gthread", "--workers", "1", "--threads", str(SCIM2_THREADS),
            "--keep-alive", "5", "--log-level", "warning",
            "bench.scim2_app:create_app()",
        )  # fmt: skip
        self.child = Child("scim2-server", args, {"BENCH_SCIM2_TOKEN": self.token}, self.workdir)
        self.child.start()
        wait_listening(self.child, self.port, "/healthz")

    def describe(self) -> str:
        from importlib.metadata import version

        return (
            f"scim2-server {version('scim2-server')}, in memory, gunicorn gthread "
            f"1 process x {SCIM2_THREADS} threads"
        )


PEERS: list[type[Peer]] = [Scimgateway, Scim2Server]


def _output(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "?"


# --- preparation ------------------------------------------------------------------------


def prepare(source: str, ref: str) -> int:
    """Install Bun (npm package ``bun``), clone scimgateway at ``ref``, install its dependencies."""
    try:
        _prepare(source, ref)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"scimgateway not available: {exc}", file=sys.stderr)
        return 1
    return status()


def _prepare(source: str, ref: str) -> None:
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    if bun_binary() is None:
        _run(["npm", "install", "--no-audit", "--no-fund", f"bun@{BUN_VERSION}"], PEERS_DIR)
    bun = bun_binary()
    if bun is None:
        raise OSError("npm did not bring a Bun binary")
    home = scimgateway_dir()
    if not (home / ".git").exists():
        _run(["git", "clone", "--quiet", source, str(home)], PEERS_DIR)
    _run(["git", "-C", str(home), "checkout", "--quiet", "--force", ref], PEERS_DIR)
    # its postinstall copies plugins two folders up (for an npm-installed package): not wanted
    env = {**os.environ, "SCIMGATEWAY_POSTINSTALL_SKIP": "1"}
    _run([str(bun), "install", "--production"], home, env)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run(args, cwd=cwd, env=env, check=True, timeout=600)


def status() -> int:
    """Print, for each peer, whether it can run here and why not."""
    missing = 0
    for peer_type in PEERS:
        peer = peer_type(Path("."))
        reason = peer.unavailable()
        if reason:
            missing += 1
            print(f"{peer.name} not available: {reason}")
        else:
            print(f"{peer.name}: {peer.describe()}")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help=f"install Bun and scimgateway under {PEERS_DIR}")
    prep.add_argument("--source", default=SCIMGATEWAY_SOURCE, help="git URL or local clone")
    prep.add_argument("--ref", default=SCIMGATEWAY_REF, help="tag or commit to check out")
    sub.add_parser("status", help="which peers can run here")
    args = p.parse_args(argv)
    if args.command == "prepare":
        return prepare(args.source, args.ref)
    return status()


if __name__ == "__main__":
    sys.exit(main())
