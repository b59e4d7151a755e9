"""Start gunicorn as production does, find its workers, stop it whatever happens."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bridge.runtime.embedded_redis import free_port

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServerSettings:
    """The gunicorn options the benchmark varies (see README: "Server settings")."""

    worker_class: str = "gthread"
    workers: int = 4
    threads: int = 2
    keepalive: int = 5
    reuse_port: bool = True
    """One SO_REUSEPORT listening socket per worker: the kernel spreads connections."""
    backlog: int = 2048

    def label(self) -> str:
        port = " reuse-port" if self.reuse_port else ""
        if self.worker_class == "gthread":
            return f"gthread w{self.workers} t{self.threads} ka{self.keepalive}s{port}"
        return f"{self.worker_class} w{self.workers}{port}"

    def as_dict(self) -> dict:
        return asdict(self)


class Gunicorn:
    """A gunicorn master in its own session, so that it and its workers stop together."""

    def __init__(
        self, app_spec: str, settings: ServerSettings, env: dict[str, str], log_dir: Path
    ) -> None:
        self.app_spec = app_spec
        self.settings = settings
        self.env = env
        self.log_path = log_dir / f"gunicorn-{app_spec.split(':')[0].replace('.', '_')}.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        s = self.settings
        args = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--worker-class", s.worker_class,
            "--workers", str(s.workers),
            "--threads", str(s.threads),
            "--keep-alive", str(s.keepalive),
            "--backlog", str(s.backlog),
            *(["--reuse-port"] if s.reuse_port else []),
            "--timeout", "60",
            "--graceful-timeout", "5",
            "--error-logfile", str(self.log_path),
            "--log-level", "warning",
            self.app_spec,
        ]  # fmt: skip
        env = {**os.environ, **self.env}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200 and len(self.worker_pids()) >= 1:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        pid = self.process.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def pids(self) -> list[int]:
        """The master and its workers."""
        return [self.process.pid, *self.worker_pids()] if self.process else []

    def profile_pid(self) -> int | None:
        """The process py-spy follows (with its subprocesses)."""
        return self.process.pid if self.process else None

    def stop(self) -> None:
        """SIGTERM to the whole session (master and workers), SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            pgid = os.getpgid(process.pid)
        except ProcessLookupError:
            pgid = None
        if process.poll() is None and pgid is not None:
            os.killpg(pgid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)
        if pgid is not None:
            try:  # workers orphaned by a killed master
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds consumed so far by ``pids`` (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick
