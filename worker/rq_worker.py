"""The RQ worker class of `mcnet worker` (started by worker.worker_main): one per GPU,
the model loaded once on its device.

`MCNetWorker` is an RQ `SimpleWorker` (jobs run in this process: a forked child could
not use CUDA after the parent touched it) that adds what a long GPU job needs:

- a lease per job (core.lease) taken when the job starts and renewed by a heartbeat
  thread; every write to the job (progress, outcome, finished) holds only while the run
  owns it, so a run that lapsed and was taken over stops between batches and records
  nothing; a job that has ended is never run again; inputs are deleted once the job is
  recorded finished;
- recovery of jobs whose lease expired (worker.recovery), from a thread of every worker:
  a dead worker is noticed within `lease_ttl + recovery_interval` seconds;
- Redis outages: the job path's Redis calls are retried for `redis_patience` seconds
  (a finished render waits for Redis to be recorded); an idle worker waits for Redis
  instead of quitting;
- outcomes: a domain error (bad input) or a timeout fails the job at once with a
  readable reason (no retry); a cancel ends it `canceled`; anything else is retried;
- SIGTERM (an autoscaler removing the worker): the current job may run
  `shutdown_grace` more seconds, then it stops between batches and goes back to the
  front of the queue without spending a retry; a job taken from the queue but not
  started yet goes straight back; an idle worker quits within `_IDLE_WAIT_S`. No
  exception is thrown into the job: the signal only sets a flag. The run also marks the
  job shut down (core.lease), so that if SIGKILL comes first (a grace period shorter
  than the rest of the job) recovery puts it back without spending a retry either. A
  second signal stops at once (the job is requeued too);
- its own Prometheus `/metrics` port, model load time included;
- a health file (`MCNET_HEALTH_FILE`) touched after each heartbeat Redis took, for a
  container healthcheck: it exists only once the model is loaded;
- periodic expiry of old inputs, results and motion templates in storage;
- the extraction of motion templates (worker.template_task), jobs of the same queue: not
  counted in the render speed the API's estimates read, their ends counted by outcome in
  Redis (core.templates).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.client import Pipeline
from redis.exceptions import RedisError, WatchError
from rq import Queue, SimpleWorker, worker_registration
from rq.job import Job, JobStatus
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
)
from rq.timeouts import JobTimeoutException
from rq.worker import WorkerStatus

from core.estimate import record_speed
from core.jobs import SERIALIZER, JobQueue, is_template_job
from core.lease import Lease, LeaseLostError, Refusal, mark_shutdown
from core.logs import log_fields
from core.protocol import Outcome, Progress, Stage
from core.storage import StorageError
from core.templates import TemplateStore
from worker.announcer import Announcer
from worker.failures import failure_reason
from worker.outcomes import Verdict, job_outcome, verdict_of
from worker.recovery import Recovery, fence_keep
from worker.redis_retry import retrying
from worker.rq_internals import (
    ask_to_stop,
    enqueue_at_front,
    handle_failure,
    handle_success,
    set_result,
    stop_requested,
    utc_now,
)
from worker.rq_task import WorkerContext, worker_context
from worker.webhooks import job_webhooks
from worker.work_folder import work_folder_problem
from worker.work_timer import WorkTimeLimit
from worker.worker_identity import WorkerNameTakenError, predecessor_gone
from worker.worker_parts import WorkerParts

if TYPE_CHECKING:
    from rq.executions import Execution


logger = logging.getLogger(__name__)

_IDLE_WAIT_S = 5  # longest wait for a job in one go: an idle worker sees SIGTERM this soon


@dataclass(frozen=True)
class _Run:
    """One run of a job on this worker: its lease, whether it was lost, and whether the
    job is marked as stopped by a shutdown (core.lease.mark_shutdown)."""

    lease: Lease
    lost: threading.Event
    marked: threading.Event = dataclasses.field(default_factory=threading.Event)


class MCNetWorker(SimpleWorker):
    """RQ SimpleWorker running animation jobs with one loaded model."""

    def __init__(self, queues: Sequence[Queue], parts: WorkerParts, **kwargs: Any) -> None:
        settings = parts.settings
        super().__init__(
            list(queues),
            serializer=SERIALIZER,
            worker_ttl=settings.worker_ttl,
            maintenance_interval=settings.maintenance_interval,
            job_monitoring_interval=max(1, int(settings.heartbeat_interval)),
            **kwargs,
        )
        self.parts = parts
        self.heartbeat_interval = settings.heartbeat_interval
        self.shutdown_grace = settings.shutdown_grace
        self.patience = settings.redis_patience
        self._deadline: float | None = None
        self._run: _Run | None = None
        self._outcome = Outcome.FAILED
        self._ended = False  # the run ended the job (finished, failed for good, canceled)
        self.recovery = Recovery(self.connection, self.queues, settings)
        self.templates = TemplateStore(self.connection, settings.queue_name, settings.template_ttl)
        self._problem: str | None = None  # why this worker takes no jobs now
        self.announcer = Announcer(
            self.connection,
            settings.queue_name,
            self.name,
            parts.model,
            settings.heartbeat_interval,
            lambda: self._problem,
        )

    # birth, death, Redis outages --------------------------------------------------------
    def register_birth(self) -> None:
        """Register; a name left by a worker that died (same host, process gone, or no
        heartbeat for `worker_ttl`) is taken over, a live one refused."""
        old = self.connection.hgetall(self.key)
        if old and b"death" not in old and "death" not in old:
            if not predecessor_gone(old, self.worker_ttl):
                raise WorkerNameTakenError(
                    f"A live worker is already named {self.name!r}; choose another --name."
                )
            logger.warning("worker name %s: its previous worker is gone; taking it over", self.name)
            self.connection.delete(self.key)
        super().register_birth()
        if self.parts.warmup is not None:  # a first speed for the API's estimates
            record_speed(self.connection, self.key, *self.parts.warmup)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """Register, then recover abandoned jobs from a thread for as long as it works."""
        super().bootstrap(*args, **kwargs)
        self.recovery.start()
        self.announcer.start()

    def teardown(self) -> None:
        """Stop the recovery and announcer threads, then as RQ does."""
        self.announcer.stop()
        self.recovery.stop()
        super().teardown()

    # a work folder that cannot hold jobs ------------------------------------------------
    def _wait_for_work_folder(self) -> bool:
        """Until this worker's work folder can hold a job, take no job (and say why),
        trying the folder again every few seconds; False when a stop came meanwhile."""
        wait = 1.0
        while self._check_work_folder() is not None:
            if stop_requested(self):
                return False
            self.heartbeat()
            time.sleep(wait)
            wait = min(wait * 2, 10.0)
        return True

    def _check_work_folder(self) -> str | None:
        """Probe the work folder; on a change, say so (log, health file, announcement)."""
        problem = work_folder_problem(self.parts.settings.work_dir)
        if problem == self._problem:
            return problem
        self._problem = problem
        if problem is not None:
            logger.error(
                "this worker takes no jobs: %s (%s); it tries again every few seconds",
                problem,
                self.parts.settings.work_dir or tempfile.gettempdir(),
            )
        else:
            logger.info("the work folder can be written again: this worker takes jobs")
        self._mark_alive()
        self.announcer.announce_now()
        return problem

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat; without Redis the worker waits instead of quitting. Sent at once
        (no pipeline) and taken by Redis, it also touches the health file."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        try:
            super().heartbeat(timeout)
        except RedisError as exc:
            logger.warning("heartbeat failed: %s", exc)
            return
        self._mark_alive()

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's check, waiting for Redis (with backoff) rather than quitting without it."""
        wait = 1.0
        while True:
            try:
                super().check_for_suspension(burst)
                return
            except RedisError as exc:
                if stop_requested(self):
                    return
                logger.warning("Redis unavailable, waiting %.0f s: %s", wait, exc)
                time.sleep(wait)
                wait = min(wait * 2, 30.0)

    # heartbeats -------------------------------------------------------------------------
    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Score of the job in RQ's started registry: past its time limit. Recovery goes by
        the lease (worker.recovery), never by this score, so it only has to outlast the run."""
        limit = job.timeout if job.timeout and job.timeout > 0 else 3600
        return int(max(limit - working_time, 0) + self.worker_ttl)

    def _beat(self, job: Job, execution: Execution, run: _Run, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval):
            try:
                self._mark_shutdown(run)
                if not run.lease.renew():
                    logger.warning("job %s: another worker took the job over", job.id)
                    run.lost.set()
                    return
                self.maintain_heartbeats(job, execution)
            except RedisError as exc:
                logger.warning("heartbeat failed: %s", exc)
            else:
                self._mark_alive()

    def _mark_alive(self) -> None:
        """Touch the health file; while the worker takes no jobs, write why in it and
        date it from 1970, so that a healthcheck on its age fails at once."""
        path = self.parts.settings.health_file
        if path is None:
            return
        try:
            if self._problem is None:
                if path.exists() and path.stat().st_size:
                    path.write_text("")
                path.touch()
            else:
                path.write_text(f"not taking jobs: {self._problem}\n")
                os.utime(path, (0, 0))
        except OSError as exc:
            logger.warning("health file %s not updated: %s", path, exc)

    # running a job ----------------------------------------------------------------------
    def execute_job(self, job: Job, queue: Queue) -> None:
        """Take the job's lease, run it with heartbeats, context and metrics around it; its
        log lines carry the job's id, its key's name and the id of the request that made it."""
        meta = job.meta or {}
        with log_fields(job_id=job.id, key=meta.get("key"), request_id=meta.get("request_id")):
            self._execute_job(job, queue)

    def _execute_job(self, job: Job, queue: Queue) -> None:
        settings = self.parts.settings
        metrics = self.parts.metrics
        # taken from the queue as SIGTERM came, or as the work folder broke: not started
        if stop_requested(self) or self._check_work_folder() is not None:
            self._give_back(job, queue)
            return
        try:
            lease = retrying(
                lambda: Lease.acquire(
                    self.connection, job.id, settings.lease_ttl, fence_keep(settings)
                ),
                f"job {job.id}: lease",
                self.patience,
            )
        except RedisError:
            return  # still in the intermediate queue: RQ's maintenance requeues it
        if not isinstance(lease, Lease):
            why = (
                "it has already ended" if lease is Refusal.ENDED else "another worker is running it"
            )
            logger.warning("job %s not run: %s", job.id, why)
            self._forget_dequeued(job, queue)
            return
        run = _Run(lease, threading.Event())
        try:
            execution = retrying(
                lambda: self.prepare_execution(job), f"job {job.id}: start", self.patience
            )
        except RedisError:
            return  # the lease lapses; RQ's maintenance requeues it from the intermediate queue
        stop = threading.Event()
        beats = threading.Thread(
            target=self._beat, args=(job, execution, run, stop), name="heartbeat", daemon=True
        )
        hooks = job_webhooks(self.parts.webhooks, job)
        context = WorkerContext(
            animator=self.parts.animator,
            storage=self.parts.storage,
            connection=self.connection,
            metrics=metrics,
            should_stop=self.shutdown_due,
            lease=lease,
            lost=run.lost,
            redis_patience=self.patience,
            work_dir=self.parts.settings.work_dir,
            media_settings=self.parts.media_settings,
            model=self.parts.model,
            on_progress=hooks.progress,
            templates=self.templates,
        )
        job.meta.pop("outcome", None)  # an earlier run's
        self._run = run
        self._outcome = Outcome.FAILED
        self._ended = False
        metrics.busy.set(1)
        started = time.perf_counter()
        beats.start()
        try:
            with worker_context(context):
                self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beats.join()
            self._run = None
            metrics.busy.set(0)
            metrics.frames_done.set(0)
            metrics.frames_total.set(0)
            hooks.completed()
        seconds = time.perf_counter() - started
        metrics.jobs.labels(self._outcome).inc()
        metrics.job_seconds.labels(self._outcome).observe(seconds)
        self._observe_times(job)
        if is_template_job(job):
            self._count_template(job)
        elif self._outcome is Outcome.FINISHED:  # the API's time estimates read it
            frames = int(job.meta.get("frames_total") or 0)
            try:
                record_speed(self.connection, self.key, frames, seconds)
            except RedisError as exc:
                logger.warning("job %s: speed not recorded: %s", job.id, exc)
        try:
            self.set_state(WorkerStatus.IDLE)
        except RedisError as exc:
            logger.warning("worker state not saved: %s", exc)

    def _count_template(self, job: Job) -> None:
        """Count a template's extraction that ended (not one retried or put back)."""
        if not self._ended:
            return
        try:
            self.templates.count_ended(self._outcome.value)
        except RedisError as exc:
            logger.warning("template %s: outcome not counted: %s", job.id, exc)

    def _observe_times(self, job: Job) -> None:
        """The times a user feels: submit to this run's start, and submit to the job's end."""
        submitted, metrics = job.created_at, self.parts.metrics
        if submitted is None or job.started_at is None:
            return
        metrics.queue_wait.labels(self._outcome).observe(
            max((job.started_at - submitted).total_seconds(), 0.0)
        )
        if self._ended and job.ended_at is not None:
            metrics.end_to_end.labels(self._outcome).observe(
                max((job.ended_at - submitted).total_seconds(), 0.0)
            )

    def _failed(self, reason: str) -> None:
        self.parts.metrics.failures.labels(reason).inc()

    def _forget_dequeued(self, job: Job, queue: Queue) -> None:
        try:
            queue.intermediate_queue.remove(job.id)
        except RedisError as exc:
            logger.warning("job %s: not removed from the intermediate queue: %s", job.id, exc)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """Run the job under its time limit and record its outcome, fenced by its lease.

        Unlike RQ's, every Redis call here is retried for `redis_patience` seconds, and a
        run that lost its lease records nothing."""
        run = self._run
        if run is None:
            raise RuntimeError("perform_job runs inside execute_job")
        try:
            retrying(
                lambda: self.prepare_job_execution(
                    job, remove_from_intermediate_queue=len(self.queues) == 1
                ),
                f"job {job.id}: start",
                self.patience,
            )
            job.started_at = utc_now()
            timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
            with WorkTimeLimit(timeout, JobTimeoutException):  # pauses do not count
                value = job.perform()
        except BaseException:  # the run's outcome, whatever ended it
            job.ended_at = utc_now()
            self._record_failure(run, job, queue, execution, sys.exc_info())
            return False
        job.ended_at = utc_now()
        set_result(job, value)
        return self._record_success(run, job, queue, execution)

    def _record(self, run: _Run, job: Job, what: str, write: Callable[[Pipeline], None]) -> bool:
        """Run `write` in a transaction that holds only while this run owns the job."""

        def transaction() -> None:
            with self.connection.pipeline() as pipe:
                run.lease.guard(pipe)
                pipe.multi()
                write(pipe)
                run.lease.release(pipe)
                pipe.execute()

        try:
            retrying(transaction, f"job {job.id}: {what}", self.patience)
        except (LeaseLostError, WatchError):
            self._outcome = Outcome.LOST
            self._failed("lost_lease")
            logger.warning(
                "job %s: another worker owns the job now; this run records nothing", job.id
            )
            return False
        except RedisError as exc:
            self._outcome = Outcome.UNRECORDED
            self._failed("redis")
            logger.error(
                "job %s: %s not recorded (%s); the job will be recovered", job.id, what, exc
            )
            return False
        return True

    def _record_success(self, run: _Run, job: Job, queue: Queue, execution: Execution) -> bool:
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        started_at = job.started_at or job.ended_at

        def write(pipe: Pipeline) -> None:
            self.increment_successful_job_count(pipeline=pipe)
            handle_success(
                job,
                pipe,
                result_ttl,
                worker_name=self.name,
                execution_id=execution.id,
                execution_started_at=execution.created_at,
                execution_ended_at=job.ended_at,
            )
            job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipe, execution=execution)

        if not self._record(run, job, "finished", write):
            return False
        self._outcome = Outcome.FINISHED
        self._ended = True
        seconds = (job.ended_at - started_at).total_seconds() if job.ended_at and started_at else 0
        logger.info("job %s: rendered and recorded finished (%.1f s)", job.id, seconds)
        try:
            self.parts.storage.delete_inputs(job.id)
        except (StorageError, OSError) as exc:
            logger.warning("job %s: inputs not deleted (they expire): %s", job.id, exc)
        return True

    def _record_failure(
        self, run: _Run, job: Job, queue: Queue, execution: Execution, exc_info: Any
    ) -> None:
        exc_value = exc_info[1]
        verdict = verdict_of(exc_value)
        if verdict in (Verdict.LOST, Verdict.UNRECORDED):
            self._failed(failure_reason(exc_value))
        if verdict is Verdict.LOST:
            self._outcome = Outcome.LOST
            logger.warning("job %s: another worker owns the job now; this run stopped", job.id)
            return
        if verdict is Verdict.UNRECORDED:
            self._outcome = Outcome.UNRECORDED
            logger.error(
                "job %s: Redis unavailable (%s); the job will be recovered", job.id, exc_value
            )
            return
        outcome = job_outcome(verdict, exc_value, job.timeout)
        if outcome.outcome is Outcome.FAILED and self._check_work_folder() is not None:
            logger.warning("job %s: back to the queue (%s)", job.id, exc_value)
            verdict = Verdict.REQUEUE  # not the job's fault: no retry spent
            outcome = job_outcome(verdict, exc_value, job.timeout)
        if verdict is Verdict.CRASH:
            logger.error("job %s failed", job.id, exc_info=exc_info)
        else:  # a job put back because the worker stops: WARNING (someone waits longer)
            level = logging.WARNING if outcome.outcome is Outcome.REQUEUED else logging.INFO
            logger.log(
                level, "job %s: %s (%s)", job.id, outcome.outcome.value, outcome.error or exc_value
            )
        exc_string = "".join(traceback.format_exception(*exc_info))
        retry = outcome.outcome is Outcome.FAILED and outcome.retry and bool(job.retries_left)
        frames = int(job.meta.get("frames_total", 0) or 0)
        if outcome.outcome is Outcome.REQUEUED or retry:
            job.meta["progress"] = Progress(Stage.QUEUED, 0, frames).as_dict()
        if outcome.outcome is Outcome.REQUEUED:
            job.meta.pop("outcome", None)
        else:
            job.meta["outcome"] = outcome.as_dict()
        if outcome.outcome is Outcome.FAILED:
            self._failed(failure_reason(exc_value))
        ended = job.ended_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if job.ended_at else ""

        def write(pipe: Pipeline) -> None:
            pipe.hset(job.key, "meta", SERIALIZER.dumps(job.meta))
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            if outcome.outcome is Outcome.CANCELED:
                job.set_status(JobStatus.CANCELED, pipeline=pipe)
                pipe.hset(job.key, "ended_at", ended)
                CanceledJobRegistry(queue.name, connection=self.connection).add(job, pipeline=pipe)
                pipe.expire(job.key, self.parts.settings.failure_ttl)
            elif outcome.outcome is Outcome.REQUEUED:
                job.started_at = None
                enqueue_at_front(queue, job, pipe)
            elif retry:
                job.started_at = None
                job.retry(queue, pipe)
            else:
                self.increment_failed_job_count(pipe)
                job.set_status(JobStatus.FAILED, pipeline=pipe)
                handle_failure(job, pipe, exc_string, self.name)
                pipe.hset(job.key, "ended_at", ended)

        if self._record(run, job, outcome.outcome.value, write):
            self._outcome = outcome.outcome
            self._ended = outcome.outcome is Outcome.CANCELED or (
                outcome.outcome is Outcome.FAILED and not retry
            )

    # shutdown ---------------------------------------------------------------------------
    def request_stop(self, signum: Any, frame: Any) -> None:
        """First SIGTERM/SIGINT: let the current job run `shutdown_grace` more seconds."""
        self._deadline = time.monotonic() + self.shutdown_grace
        if self._run is not None:
            logger.info("shutdown: the current job may run %.0f s more", self.shutdown_grace)
        super().request_stop(signum, frame)

    def _shutdown(self) -> None:
        """RQ's warm shutdown without its exception: RQ throws StopRequested into whatever
        runs when the worker is not busy, which can strand a job just taken from the
        queue. Here the signal only sets the flag; the idle wait and the job read it."""
        ask_to_stop(self)

    def shutdown_due(self) -> bool:
        """Whether the running job must stop now because the worker is shutting down
        (called between frames; the first call after SIGTERM marks the job)."""
        if self._deadline is None:
            return False
        run = self._run
        if run is not None:
            try:
                self._mark_shutdown(run)
            except RedisError as exc:
                logger.warning("shutdown mark not saved: %s", exc)  # the heartbeat tries again
        return time.monotonic() >= self._deadline

    def _mark_shutdown(self, run: _Run) -> None:
        """Once SIGTERM came: mark the job's run as stopped by a shutdown (core.lease)."""
        if self._deadline is None or run.marked.is_set():
            return
        mark_shutdown(
            self.connection, run.lease.job_id, run.lease.fence, fence_keep(self.parts.settings)
        )
        run.marked.set()

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """RQ's wait for a job, in waits of at most `_IDLE_WAIT_S` seconds so that a stop
        request is seen soon; a job taken as the request came goes back to the front of
        its queue. None once a stop is requested (or, as RQ's, when idle too long). No job
        is taken while the work folder cannot hold one (`_wait_for_work_folder`)."""
        if not self._wait_for_work_folder():
            logger.info("worker %s: stopping on request", self.name)
            return None
        if timeout is None:  # burst: RQ's own, it does not block
            result = super().dequeue_job_and_maintain_ttl(None, max_idle_time)
        else:
            idle_since = time.monotonic()
            result = None
            while result is None:
                if stop_requested(self):
                    logger.info("worker %s: stopping on request", self.name)
                    return None
                if max_idle_time is not None and time.monotonic() - idle_since >= max_idle_time:
                    return None
                wait = min(timeout, _IDLE_WAIT_S)
                result = super().dequeue_job_and_maintain_ttl(wait, wait)
        if result is not None and stop_requested(self):
            self._give_back(*result)
            return None
        return result

    def _give_back(self, job: Job, queue: Queue) -> None:
        """Put a job this worker took but did not start back at the front of its queue."""

        def give_back() -> None:
            with self.connection.pipeline() as pipe:
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                pipe.execute()

        try:
            retrying(give_back, f"job {job.id}: give back", self.patience)
        except RedisError as exc:
            logger.error("job %s: not given back (%s); RQ's maintenance requeues it", job.id, exc)
            return
        logger.info("job %s: put back in the queue unstarted", job.id)

    # maintenance ------------------------------------------------------------------------
    def clean_registries(self) -> None:
        """RQ's registry cleanup, except the started registry: recovering a running job
        goes by its lease (worker.recovery), never by RQ's heartbeat score."""
        for queue in self.queues:
            if queue.acquire_maintenance_lock():
                for kind in (FinishedJobRegistry, FailedJobRegistry, DeferredJobRegistry):
                    kind(queue.name, connection=self.connection, serializer=SERIALIZER).cleanup()
                worker_registration.clean_worker_registry(queue)
                queue.intermediate_queue.cleanup(self, queue)
                queue.release_maintenance_lock()
        self.last_cleaned_at = utc_now()  # type: ignore[assignment]  # (RQ's stub: None)

    def run_maintenance_tasks(self) -> None:
        """Registry cleanup, plus expiry of old files and canceled jobs."""
        settings = self.parts.settings
        try:
            super().run_maintenance_tasks()
            removed = self.parts.storage.expire_all(
                input_ttl=settings.input_ttl,
                result_ttl=settings.result_ttl,
                template_ttl=settings.template_ttl,
            )
            if removed:
                logger.info("storage: %d expired objects deleted", removed)
            JobQueue(self.connection, settings).prune_canceled()
        except (StorageError, RedisError, OSError) as exc:
            self.last_cleaned_at = utc_now()  # type: ignore[assignment]  # (RQ's stub: None)
            logger.warning("maintenance failed: %s", exc)
