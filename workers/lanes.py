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
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
from rq import Queue, SimpleWorker, worker_registration
from rq.executions import Execution
from rq.job import Job
from rq.registry import StartedJobRegistry, clean_registries
from rq.timeouts import TimerDeathPenalty
from rq.utils import now as utc_now

from bridge.directory.stored import as_text

log = logging.getLogger(__name__)

RECONNECT_FIRST_SECONDS = 0.5
"""First wait before a lane asks Redis again after losing it; doubles up to the next."""

RECONNECT_MAX_SECONDS = 5.0
"""Longest wait between two attempts to reach Redis again."""

HEARTBEAT_GAP_SECONDS = 1.0
"""Least time between two of a lane worker's own heartbeats (each extends its
registration by RQ's worker TTL, a minute or more)."""

STRANDED_SECONDS = 5.0
"""A job taken from a queue (RQ moves it to the queue's intermediate list) that has not
started after this long was taken by a worker that lost Redis or died at that instant; it
is queued again (RQ would wait a minute)."""


class LaneWorker(SimpleWorker):
    """A SimpleWorker for a thread: no signal handlers, no pubsub thread, timeouts by
    timer, and a heartbeat that the process drives while a job runs."""

    death_penalty_class = TimerDeathPenalty

    def __init__(self, queues: Sequence[Queue], *, lost_after: int, **kwargs: Any) -> None:
        super().__init__(queues, **kwargs)
        self.lost_after = lost_after
        self._running: tuple[Job, Execution] | None = None
        self._dequeued: tuple[Job, Queue] | None = None
        self._stranded: dict[str, float] = {}
        self._beaten = -math.inf

    def _install_signal_handlers(self) -> None:
        """The process's main thread owns the signals and stops the lanes itself."""

    def subscribe(self) -> None:
        """No pubsub thread per lane: the bridge sends its workers no RQ commands."""

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a running job's execution lives without a heartbeat: after that, RQ's
        maintenance takes the job for abandoned and runs it again."""
        return self.lost_after

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's worker heartbeat, its three commands in one round trip (RQ sends each on
        its own), and at most once per HEARTBEAT_GAP_SECONDS when it only extends the
        registration's default lifetime (RQ sends one three times around every job)."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            self._beaten = -math.inf  # it may have shortened the registration's life
            return
        if timeout is None and time.monotonic() - self._beaten < HEARTBEAT_GAP_SECONDS:
            return
        pipe = self.connection.pipeline(transaction=False)
        super().heartbeat(timeout, pipeline=pipe)
        pipe.execute()
        self._beaten = time.monotonic()

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's dequeue, remembering the job taken until it starts (see :meth:`recover`)."""
        result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        self._dequeued = result
        return result

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's, after dropping executions of the job left by dead workers (a job that
        never started has none)."""
        if job.started_at is not None:
            _forget_dead_executions(job)
        return super().prepare_execution(job)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run one job in this thread, remembering it while it runs (RQ marks the worker
        idle again when it next listens)."""
        execution = self.prepare_execution(job)
        self._dequeued = None
        self._running = (job, execution)
        try:
            self.perform_job(job, queue, execution)
        finally:
            self._running = None

    def run_maintenance_tasks(self) -> None:
        """Not here: an idle lane is blocked in its dequeue for most of the time, and RQ's
        queue maintenance lock outlives a killed holder by 15 minutes. The process's
        maintenance thread calls :meth:`maintain` instead, on time."""
        self.last_cleaned_at = utc_now()  # type: ignore[assignment]  # rq declares it as None only

    def maintain(self, every: int) -> None:
        """RQ's queue maintenance (lost jobs re-run, stale registrations and rate-limit
        slots freed), then stranded jobs queued again: at most once per ``every`` seconds
        per queue across all workers, under a lock that lapses by itself."""
        for queue in self.queues:
            lock = f"{queue.registry_cleaning_key}:lanes"
            if not self.connection.set(lock, self.name, nx=True, ex=max(1, every)):
                continue
            clean_registries(queue, self._exc_handlers)
            worker_registration.clean_worker_registry(queue)
            self._requeue_stranded(queue)

    def _requeue_stranded(self, queue: Queue) -> None:
        """Queue again the jobs taken from ``queue`` that never started (STRANDED_SECONDS)."""
        started = set(StartedJobRegistry(queue=queue).get_job_ids(cleanup=False))
        now = time.monotonic()
        waiting = [i for i in queue.intermediate_queue.get_job_ids() if i not in started]
        self._stranded = {i: self._stranded.get(i, now) for i in waiting}
        for job_id, since in list(self._stranded.items()):
            if now - since < STRANDED_SECONDS:
                continue
            del self._stranded[job_id]
            if not self.connection.set(
                f"{queue.intermediate_queue_key}:again:{job_id}", 1, nx=True, ex=60
            ):
                continue  # another lane is at it
            job = queue.fetch_job(job_id)
            if job is not None and job.get_status() == "queued":
                log.warning(
                    "job %s was taken from %s but never started; queued again", job_id, queue.name
                )
                self.handle_job_failure(job, queue, exc_string="taken but never started")
            queue.intermediate_queue.remove(job_id)

    def recover(self) -> None:
        """After this worker quit because Redis went away: give back the job it had taken
        from its queue but not yet started (RQ would find it in the queue's intermediate
        list a minute later), and deregister."""
        taken, self._dequeued = self._dequeued, None
        if taken is not None:
            job, queue = taken
            started = StartedJobRegistry(queue=queue)
            if job.id in queue.intermediate_queue.get_job_ids() and job.id not in started:
                log.warning(
                    "worker %s: job %s was taken but never started; again", self.name, job.id
                )
                self.handle_job_failure(
                    job, queue, exc_string="its worker lost Redis before it started"
                )
                queue.intermediate_queue.remove(job.id)
        self.register_death()  # type: ignore[no-untyped-call]  # rq leaves it unannotated

    def beat(self) -> None:
        """Refresh the running job's execution, and register again if Redis lost us."""
        running = self._running
        if running is not None:
            self.maintain_heartbeats(*running)
        if self.birth_date is not None and not self.connection.hexists(self.key, "birth"):
            log.warning(
                "worker %s: registration lost (Redis emptied?); registering again", self.name
            )
            self.register_birth()  # type: ignore[no-untyped-call]  # rq leaves it unannotated


def _forget_dead_executions(job: Job) -> None:
    """Drop the job's executions whose worker died from its execution registry.

    RQ lists an execution there for 60 s longer than the execution itself lives; a job run
    again within that time (as a lost job is, here) would fail when it finishes, fetching
    an execution that no longer exists."""
    registry = job.execution_registry
    connection = job.connection
    # without scores, ZRANGE answers names only
    members = cast(list[bytes], connection.zrange(registry.key, 0, -1))
    ids = [as_text(i) for i in members]
    if not ids:
        return
    pipe = connection.pipeline(transaction=False)
    for eid in ids:
        pipe.exists(Execution(eid, job.id, connection).key)
    dead = [eid for eid, alive in zip(ids, pipe.execute(), strict=True) if not alive]
    if dead:
        connection.zrem(registry.key, *dead)


def lane_stopping() -> bool:
    """Whether the lane running the calling job is stopping (False outside a lane)."""
    lane = threading.current_thread()
    return isinstance(lane, Lane) and lane.stopping.is_set()


class Lane(threading.Thread):
    """Runs one LaneWorker after another until stopped: a worker that quits because Redis
    went away is replaced once Redis answers again."""

    def __init__(
        self, name: str, queue: str, make: Callable[[str], LaneWorker], ping: redis.Redis
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.queue = queue
        self.make = make
        self.ping = ping
        self.worker: LaneWorker | None = None
        self.stopping = threading.Event()
        self.generation = 0

    def run(self) -> None:
        """Run lane workers until stopped, a new one whenever one stops (Redis away)."""
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
        """Whether the lane runs a job now."""
        worker = self.worker
        return worker is not None and worker._running is not None

    def beat(self) -> None:
        """Heartbeat of the lane's worker, so RQ does not take it for dead."""
        worker = self.worker
        if worker is not None:
            worker.beat()

    def stop(self) -> None:
        """Ask the worker to stop after its current job (RQ's warm shutdown)."""
        self.stopping.set()
        worker = self.worker
        if worker is not None:
            worker._stop_requested = True

    def leave(self) -> None:
        """Deregister the worker and close its connections (the process is exiting)."""
        worker = self.worker
        if worker is None:
            return
        try:
            worker.register_death()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        except redis.RedisError:
            pass  # its registration lapses by itself
        worker.connection.connection_pool.disconnect()
