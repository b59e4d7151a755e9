"""Lanes: RQ SimpleWorkers that run side by side in one worker process's threads.

Jobs run in-process (no fork per job), so connection pools, OAuth2 and Graph tokens and
parsed target configurations are shared by every lane of the process. Each lane is a
registered RQ worker of its own. What RQ leaves to a forking worker's parent is done
here by the process:

- **heartbeats** while a job runs (:meth:`LaneWorker.beat`, called every
  BRIDGE_JOB_HEARTBEAT_SECONDS): a job whose process died stops beating and is found by
  RQ's maintenance after BRIDGE_JOB_LOST_SECONDS, then run again (its ``Retry``);
- **signals** belong to the main thread, which stops the lanes (:meth:`Lane.stop`);
- **reconnecting**: a lane whose worker quit because Redis went away waits for Redis and
  starts a new worker (:class:`Lane`), so a restart or failover of Redis never ends the
  process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

log = logging.getLogger(__name__)

RECONNECT_FIRST_SECONDS = 0.5
"""First wait before a lane asks Redis again after losing it; doubles up to the next."""

RECONNECT_MAX_SECONDS = 5.0
"""Longest wait between two attempts to reach Redis again."""


class LaneWorker(SimpleWorker):
    """A SimpleWorker for a thread: no signal handlers, no pubsub thread, timeouts by
    timer, and a heartbeat that the process drives while a job runs."""

    death_penalty_class = TimerDeathPenalty

    def __init__(self, queues: Sequence[Queue], *, lost_after: int, **kwargs) -> None:
        super().__init__(queues, **kwargs)
        self.lost_after = lost_after
        self._running: tuple[Job, object] | None = None

    def _install_signal_handlers(self) -> None:
        """The process's main thread owns the signals and stops the lanes itself."""

    def subscribe(self) -> None:
        """No pubsub thread per lane: the bridge sends its workers no RQ commands."""

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a running job's execution lives without a heartbeat: after that, RQ's
        maintenance takes the job for abandoned and runs it again."""
        return self.lost_after

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        self._running = (job, execution)
        try:
            self.perform_job(job, queue, execution)
        finally:
            self._running = None
        self.set_state(WorkerStatus.IDLE)

    def beat(self) -> None:
        """Refresh the running job's execution, and register again if Redis lost us."""
        running = self._running
        if running is not None:
            self.maintain_heartbeats(*running)  # type: ignore[arg-type]
        if self.birth_date is not None and not self.connection.hexists(self.key, "birth"):
            log.warning(
                "worker %s: registration lost (Redis emptied?); registering again", self.name
            )
            self.register_birth()


class Lane(threading.Thread):
    """Runs one LaneWorker after another until stopped: a worker that quits because Redis
    went away is replaced once Redis answers again."""

    def __init__(self, name: str, make: Callable[[str], LaneWorker], ping: redis.Redis) -> None:
        super().__init__(name=name, daemon=True)
        self.make = make
        self.ping = ping
        self.worker: LaneWorker | None = None
        self.stopping = threading.Event()
        self.generation = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            self.generation += 1
            try:
                self.worker = self.make(f"{self.name}.{self.generation}")
                self.worker.work(logging_level="WARNING")
            except Exception:  # noqa: BLE001 - a lane must outlive whatever stopped its worker
                log.exception("lane %s: worker failed", self.name)
            if not self.stopping.is_set():
                log.warning(
                    "lane %s: worker stopped; starting another once Redis answers", self.name
                )
                self._wait_for_redis()

    def _wait_for_redis(self) -> None:
        wait = RECONNECT_FIRST_SECONDS
        while not self.stopping.is_set():
            try:
                self.ping.ping()
                return
            except redis.RedisError:
                self.stopping.wait(wait)
                wait = min(RECONNECT_MAX_SECONDS, wait * 2)

    @property
    def busy(self) -> bool:
        worker = self.worker
        return worker is not None and worker._running is not None

    def beat(self) -> None:
        worker = self.worker
        if worker is not None:
            worker.beat()

    def stop(self) -> None:
        """Ask the worker to stop after its current job (RQ's warm shutdown)."""
        self.stopping.set()
        worker = self.worker
        if worker is not None:
            worker._stop_requested = True

    def interrupt(self) -> None:
        """Wake an idle worker blocked in its dequeue by closing its connections."""
        worker = self.worker
        if worker is not None and not self.busy:
            worker.connection.connection_pool.disconnect()
