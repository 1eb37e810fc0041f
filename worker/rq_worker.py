"""`mcnet worker`: one RQ worker per GPU, the model loaded once on its device.

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
- SIGTERM: the current job may run `shutdown_grace` more seconds, then it stops
  between batches and goes back to the front of the queue; a second signal stops at
  once (the job is requeued too);
- its own Prometheus `/metrics` port, model load time included;
- a health file (`MCNET_HEALTH_FILE`) touched after each heartbeat Redis took, for a
  container healthcheck: it exists only once the model is loaded;
- periodic expiry of old inputs and results in storage.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError, WatchError
from rq import Queue, SimpleWorker, worker_registration
from rq.exceptions import AbandonedJobError
from rq.job import Job, JobStatus
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
)
from rq.timeouts import JobTimeoutException
from rq.utils import now, utcparse
from rq.worker import WorkerStatus

from core.cli import add_model_options
from core.errors import JobCanceledError, MCNetError
from core.estimate import record_speed
from core.jobs import MODEL_FIELD, SERIALIZER, JobQueue
from core.lease import Lease, LeaseLostError
from core.logs import configure_logging
from core.protocol import DEMO_MODEL, JobOutcome, Outcome, Progress, Stage, time_limit_message
from core.settings import WorkerSettings, settings_from_env
from core.storage import Storage, StorageError, open_storage
from worker.animator import describe_model, load_animator
from worker.media.settings import MediaSettings
from worker.metrics import WorkerMetrics
from worker.recovery import Recovery, fence_keep
from worker.redis_retry import retrying
from worker.rq_task import JOB_FOLDER_PREFIX, ShutdownRequeueError, WorkerContext, worker_context
from worker.warmup import measure_speed
from worker.webhooks import WebhookSender, job_webhooks, webhook_sender

if TYPE_CHECKING:
    from rq.executions import Execution

    from model.animator import Animator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerParts:
    """What a worker is made of besides its queue: built by `main`, or by tests."""

    animator: Animator
    storage: Storage
    metrics: WorkerMetrics
    settings: WorkerSettings
    media_settings: MediaSettings | None = None
    model: str = DEMO_MODEL  # the model's label (worker.animator.describe_model)
    webhooks: WebhookSender | None = None
    warmup: tuple[int, float] | None = None  # frames and seconds of worker.warmup, if run


def outcome_of(
    job: Job, exc_type: type[BaseException], exc_value: BaseException
) -> JobOutcome | None:
    """What a failed run of `job` means; None for a job whose worker died (RQ retries it).

    A domain error (bad input) or a timeout fails the job at once with a readable reason;
    a cancel ends it canceled; a shutdown puts it back in the queue; anything else fails
    the run and RQ retries it while retries are left.
    """
    if issubclass(exc_type, AbandonedJobError):
        return None
    if issubclass(exc_type, ShutdownRequeueError | SystemExit | KeyboardInterrupt):
        return JobOutcome(Outcome.REQUEUED)
    if issubclass(exc_type, JobCanceledError):
        return JobOutcome(Outcome.CANCELED)
    if issubclass(exc_type, MCNetError):
        return JobOutcome(Outcome.FAILED, str(exc_value))
    if issubclass(exc_type, JobTimeoutException):
        return JobOutcome(Outcome.FAILED, time_limit_message(job.timeout))
    return JobOutcome(Outcome.FAILED, retry=True)


class WorkerNameTakenError(Exception):
    """A live worker already uses this name."""


@dataclass(frozen=True)
class _Run:
    """One run of a job on this worker: its lease and whether it was lost."""

    lease: Lease
    lost: threading.Event


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        self._outcome = Outcome.FAILED.value
        self.recovery = Recovery(self.connection, self.queues, settings)

    # birth, death, Redis outages --------------------------------------------------------
    def register_birth(self) -> None:
        """Register; a name left by a worker that died (same host, process gone, or no
        heartbeat for `worker_ttl`) is taken over, a live one refused."""
        old = self.connection.hgetall(self.key)
        if old and b"death" not in old and "death" not in old:
            if not self._predecessor_gone(old):
                raise WorkerNameTakenError(
                    f"A live worker is already named {self.name!r}; choose another --name."
                )
            logger.warning("worker name %s: its previous worker is gone; taking it over", self.name)
            self.connection.delete(self.key)
        super().register_birth()
        self.connection.hset(self.key, MODEL_FIELD, self.parts.model)  # /readyz shows it
        if self.parts.warmup is not None:  # a first speed for the API's estimates
            record_speed(self.connection, self.key, *self.parts.warmup)

    def _predecessor_gone(self, raw: dict[Any, Any]) -> bool:
        old = {_text(k): _text(v) for k, v in raw.items()}
        host, pid = old.get("hostname", ""), old.get("pid", "")
        if host == socket.gethostname() and pid.isdigit():
            return int(pid) == os.getpid() or not _pid_alive(int(pid))
        beat = old.get("last_heartbeat", "")
        try:
            age = (now() - utcparse(beat)).total_seconds()
        except ValueError:
            return True
        return age > self.worker_ttl

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """Register, then recover abandoned jobs from a thread for as long as it works."""
        super().bootstrap(*args, **kwargs)
        self.recovery.start()

    def teardown(self) -> None:
        """Stop the recovery thread, then as RQ does."""
        self.recovery.stop()
        super().teardown()

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
                if self._stop_requested:
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
        path = self.parts.settings.health_file
        if path is not None:
            try:
                path.touch()
            except OSError as exc:
                logger.warning("health file %s not touched: %s", path, exc)

    # running a job ----------------------------------------------------------------------
    def execute_job(self, job: Job, queue: Queue) -> None:
        """Take the job's lease, run it with heartbeats, context and metrics around it."""
        settings = self.parts.settings
        metrics = self.parts.metrics
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
            why = "it has already ended" if lease < 0 else "another worker is running it"
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
        )
        job.meta.pop("outcome", None)  # an earlier run's
        self._run = run
        self._outcome = Outcome.FAILED.value
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
        if self._outcome == Outcome.FINISHED.value:  # the API's time estimates read it
            frames = int(job.meta.get("frames_total") or 0)
            try:
                record_speed(self.connection, self.key, frames, seconds)
            except RedisError as exc:
                logger.warning("job %s: speed not recorded: %s", job.id, exc)
        try:
            self.set_state(WorkerStatus.IDLE)
        except RedisError as exc:
            logger.warning("worker state not saved: %s", exc)

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
            job.started_at = now()
            timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
            with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id):
                value = job.perform()
        except BaseException:  # the run's outcome, whatever ended it
            job.ended_at = now()
            self._record_failure(run, job, queue, execution, sys.exc_info())
            return False
        job.ended_at = now()
        job._result = value
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
            self._outcome = "lost"
            logger.warning(
                "job %s: another worker owns the job now; this run records nothing", job.id
            )
            return False
        except RedisError as exc:
            self._outcome = "unrecorded"
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
            job._handle_success(
                result_ttl,
                pipeline=pipe,
                worker_name=self.name,
                execution_id=execution.id,
                execution_started_at=execution.created_at,
                execution_ended_at=job.ended_at,
            )
            job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipe, execution=execution)

        if not self._record(run, job, "finished", write):
            return False
        self._outcome = Outcome.FINISHED.value
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
        exc_type, exc_value = exc_info[0], exc_info[1]
        if isinstance(exc_value, LeaseLostError):
            self._outcome = "lost"
            logger.warning("job %s: another worker owns the job now; this run stopped", job.id)
            return
        if isinstance(exc_value, RedisError):
            self._outcome = "unrecorded"
            logger.error(
                "job %s: Redis unavailable (%s); the job will be recovered", job.id, exc_value
            )
            return
        outcome = outcome_of(job, exc_type, exc_value) or JobOutcome(Outcome.FAILED, retry=True)
        if outcome.outcome is Outcome.FAILED and outcome.error is None:
            logger.error("job %s failed", job.id, exc_info=exc_info)
        else:
            logger.info(
                "job %s: %s (%s)", job.id, outcome.outcome.value, outcome.error or exc_value
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
                queue._enqueue_job(job, pipeline=pipe, at_front=True)
            elif retry:
                job.started_at = None
                job.retry(queue, pipe)
            else:
                self.increment_failed_job_count(pipe)
                job.set_status(JobStatus.FAILED, pipeline=pipe)
                job._handle_failure(exc_string, pipe, worker_name=self.name)
                pipe.hset(job.key, "ended_at", ended)

        if self._record(run, job, outcome.outcome.value, write):
            self._outcome = outcome.outcome.value

    # shutdown ---------------------------------------------------------------------------
    def request_stop(self, signum: Any, frame: Any) -> None:
        """First SIGTERM/SIGINT: let the current job run `shutdown_grace` more seconds."""
        self._deadline = time.monotonic() + self.shutdown_grace
        if self._run is not None:
            logger.info("shutdown: the current job may run %.0f s more", self.shutdown_grace)
        super().request_stop(signum, frame)

    def shutdown_due(self) -> bool:
        """Whether the running job must stop now because the worker is shutting down."""
        return self._deadline is not None and time.monotonic() >= self._deadline

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
        self.last_cleaned_at = now()  # type: ignore[assignment]  # (RQ's stub: None)

    def run_maintenance_tasks(self) -> None:
        """Registry cleanup, plus expiry of old files and canceled jobs."""
        settings = self.parts.settings
        try:
            super().run_maintenance_tasks()
            removed = self.parts.storage.expire_all(
                input_ttl=settings.input_ttl, result_ttl=settings.result_ttl
            )
            if removed:
                logger.info("storage: %d expired objects deleted", removed)
            JobQueue(self.connection, settings).prune_canceled()
        except (StorageError, RedisError, OSError) as exc:
            self.last_cleaned_at = now()  # type: ignore[assignment]  # (RQ's stub: None)
            logger.warning("maintenance failed: %s", exc)


def prepare_work_dir(work_dir: Path | None) -> None:
    """Create the configured work folder (ValueError when it cannot be used) and sweep the
    job folders that workers which died on this host left in it."""
    if work_dir is not None:
        try:
            work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"MCNET_WORK_DIR {work_dir} cannot be created: {exc}") from exc
        if not os.access(work_dir, os.W_OK | os.X_OK):
            raise ValueError(f"MCNET_WORK_DIR {work_dir} is not writable")
    root = work_dir or Path(tempfile.gettempdir())
    pattern = re.compile(re.escape(JOB_FOLDER_PREFIX) + r"(\d+)-")
    for folder in root.glob(JOB_FOLDER_PREFIX + "*"):
        match = pattern.match(folder.name)
        if match is None or not folder.is_dir():
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or not _pid_alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("removed the work folder %s of a worker that stopped", folder.name)


def media_settings(settings: WorkerSettings) -> MediaSettings:
    """The media pipeline's settings, with the same input limits the API checks."""
    return MediaSettings(limits=settings.media_limits(), encode=settings.encode_settings())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcnet worker",
        description="Run one animation worker (RQ). Settings come from the environment "
        "(REDIS_URL, STORAGE_URL, MCNET_*); options given here override them.",
    )
    add_model_options(parser)
    parser.add_argument("--metrics-port", type=int, help="MCNET_METRICS_PORT (0: off)")
    parser.add_argument("--name", help="worker name (default: host.pid.random)")
    parser.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    return parser


def settings_from_args(args: argparse.Namespace, settings: WorkerSettings) -> WorkerSettings:
    """Command-line values over environment values."""
    update: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "device": args.device,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "compile": args.compile,
        "metrics_port": args.metrics_port,
        "worker_name": args.name,
    }
    if args.demo_weights:
        update["demo_weights"] = True
    return settings.model_copy(update={k: v for k, v in update.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mcnet worker`."""
    args = _parser().parse_args(argv)
    configure_logging()
    settings = settings_from_args(args, settings_from_env(WorkerSettings))
    if not settings.redis_url:
        logger.error("REDIS_URL is not set (or run `mcnet serve`, which starts Redis)")
        return 2
    if settings.health_file is not None:  # a restarted container's file is not this run's
        settings.health_file.unlink(missing_ok=True)
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    try:
        started = time.perf_counter()
        animator = load_animator(settings)
        metrics.model_load_seconds.set(time.perf_counter() - started)
        warmup = measure_speed(animator)
        logger.info("speed measured: %.2f frames/s", warmup[0] / warmup[1])
        storage = open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url)
        storage.check()
        prepare_work_dir(settings.work_dir)
    except (MCNetError, StorageError, ValueError) as exc:
        logger.error("%s", exc)
        return 2
    name = settings.worker_name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    metrics.info.labels(name, str(animator.device), settings.precision).set(1)
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
        except OSError as exc:
            logger.error(
                "The worker's metrics port %d on %s cannot be used (%s): set "
                "MCNET_METRICS_PORT to a free port, or 0 to turn the metrics off.",
                settings.metrics_port,
                settings.metrics_host,
                exc.strerror or exc,
            )
            return 2
        logger.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    connection = Redis.from_url(settings.redis_url, health_check_interval=30)
    queue = Queue(settings.queue_name, connection=connection, serializer=SERIALIZER)
    webhooks = webhook_sender(settings, connection, metrics)
    parts = WorkerParts(
        animator=animator,
        storage=storage,
        metrics=metrics,
        settings=settings,
        media_settings=media_settings(settings),
        model=describe_model(settings),
        webhooks=webhooks,
        warmup=warmup,
    )
    worker = MCNetWorker([queue], parts, name=name, connection=connection)
    try:
        worker.work(
            burst=args.burst, logging_level=logging.getLevelName(logger.getEffectiveLevel())
        )
    except WorkerNameTakenError as exc:
        logger.error("%s", exc)
        return 2
    finally:
        if webhooks is not None:
            webhooks.close(grace=settings.webhook_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
