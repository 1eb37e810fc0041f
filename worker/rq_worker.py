"""`mcnet worker`: one RQ worker per GPU, the model loaded once on its device.

`MCNetWorker` is an RQ `SimpleWorker` (jobs run in this process: a forked child could
not use CUDA after the parent touched it) that adds what a long GPU job needs:

- heartbeats from a thread while a job runs, with a short TTL, so a worker that dies
  (killed, machine lost) is noticed within seconds and its job retried by another one;
- outcomes: a domain error (bad input) or a timeout fails the job at once with a
  readable reason (no retry); a cancel ends it `canceled`; anything else is retried;
- SIGTERM: the current job may run `shutdown_grace` more seconds, then it stops
  between batches and goes back to the front of the queue; a second signal stops at
  once (the job is requeued too);
- its own Prometheus `/metrics` port, model load time included;
- periodic expiry of old inputs and results in storage.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import AbandonedJobError
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry
from rq.timeouts import JobTimeoutException
from rq.utils import now
from rq.worker import WorkerStatus

from core.cli import add_model_options
from core.errors import JobCanceledError, MCNetError
from core.jobs import SERIALIZER, JobQueue
from core.logs import configure_logging
from core.protocol import JobOutcome, Outcome, Progress, Stage, time_limit_message
from core.settings import WorkerSettings
from core.storage import Storage, StorageError, open_storage
from worker.animator import load_animator
from worker.media.settings import MediaSettings
from worker.metrics import WorkerMetrics
from worker.rq_task import ShutdownRequeueError, WorkerContext, worker_context
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
    webhooks: WebhookSender | None = None


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
        self._deadline: float | None = None
        self.push_exc_handler(self._classify_failure)

    # heartbeats -------------------------------------------------------------------------
    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """Short: a job whose worker stops beating is recovered in seconds, not hours."""
        return max(5, int(self.heartbeat_interval * 3 + 2))

    def _beat(self, job: Job, execution: Execution, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval):
            try:
                self.maintain_heartbeats(job, execution)
            except RedisError as exc:
                logger.warning("heartbeat failed: %s", exc)

    # running a job ----------------------------------------------------------------------
    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run one job in this process with heartbeats, context and metrics around it."""
        metrics = self.parts.metrics
        execution = self.prepare_execution(job)
        stop = threading.Event()
        beats = threading.Thread(
            target=self._beat, args=(job, execution, stop), name="heartbeat", daemon=True
        )
        hooks = job_webhooks(self.parts.webhooks, job)
        context = WorkerContext(
            animator=self.parts.animator,
            storage=self.parts.storage,
            connection=self.connection,
            metrics=metrics,
            should_stop=self.shutdown_due,
            work_dir=self.parts.settings.work_dir,
            media_settings=self.parts.media_settings,
            on_progress=hooks.progress,
        )
        job.meta.pop("outcome", None)  # an earlier run's
        metrics.busy.set(1)
        started = time.perf_counter()
        beats.start()
        try:
            with worker_context(context):
                ok = self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beats.join()
            metrics.busy.set(0)
            metrics.frames_done.set(0)
            metrics.frames_total.set(0)
            hooks.completed()
        failure = None if ok else JobOutcome.from_meta(job.meta)
        outcome = Outcome.FINISHED if ok else failure.outcome if failure else Outcome.FAILED
        metrics.jobs.labels(outcome.value).inc()
        metrics.job_seconds.labels(outcome.value).observe(time.perf_counter() - started)
        self.set_state(WorkerStatus.IDLE)

    def _classify_failure(
        self, job: Job, exc_type: type[BaseException], exc_value: BaseException, tb: Any
    ) -> bool:
        """Exception handler: store what a failure means in the job before RQ records it."""
        outcome = outcome_of(job, exc_type, exc_value)
        if outcome is None:
            return True
        job.meta["outcome"] = outcome.as_dict()
        if outcome.outcome is Outcome.FAILED and not outcome.retry:
            job.retries_left = 0
        try:
            job.save_meta()
        except RedisError as exc:
            logger.warning("job %s: meta not saved: %s", job.id, exc)
        return True

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Execution | None = None,
    ) -> None:
        """Canceled jobs end `canceled`, interrupted ones are requeued, the rest as RQ does."""
        stored = JobOutcome.from_meta(job.meta)
        outcome = stored.outcome if stored is not None else Outcome.FAILED
        try:
            if outcome is Outcome.CANCELED:
                self._end_canceled(job, queue, execution)
                return
            if outcome is Outcome.REQUEUED:
                self._requeue(job, queue, execution)
                return
        except RedisError:
            logger.exception("job %s: could not record %s; failing it instead", job.id, outcome)
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    def _end_canceled(self, job: Job, queue: Queue, execution: Execution | None) -> None:
        ttl = self.parts.settings.failure_ttl
        with self.connection.pipeline() as pipe:
            job.set_status(JobStatus.CANCELED, pipeline=pipe)
            pipe.hset(job.key, "ended_at", now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            CanceledJobRegistry(queue.name, connection=self.connection).add(job, pipeline=pipe)
            pipe.expire(job.key, ttl)
            pipe.execute()
        logger.info("job %s canceled while running", job.id)

    def _requeue(self, job: Job, queue: Queue, execution: Execution | None) -> None:
        frames = int(job.meta.get("frames_total", 0) or 0)
        job.meta["progress"] = Progress(Stage.QUEUED, 0, frames).as_dict()
        job.meta.pop("outcome", None)
        with self.connection.pipeline() as pipe:
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            pipe.execute()
        job.started_at = None
        queue.enqueue_job(job, at_front=True)
        logger.warning("job %s stopped by shutdown and put back at the front of the queue", job.id)

    # shutdown ---------------------------------------------------------------------------
    def request_stop(self, signum: Any, frame: Any) -> None:
        """First SIGTERM/SIGINT: let the current job run `shutdown_grace` more seconds."""
        self._deadline = time.monotonic() + self.shutdown_grace
        if self.get_state() == WorkerStatus.BUSY:
            logger.info("shutdown: the current job may run %.0f s more", self.shutdown_grace)
        super().request_stop(signum, frame)

    def shutdown_due(self) -> bool:
        """Whether the running job must stop now because the worker is shutting down."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    # maintenance ------------------------------------------------------------------------
    def run_maintenance_tasks(self) -> None:
        """RQ's registry cleanup, plus expiry of old files and canceled jobs."""
        super().run_maintenance_tasks()
        settings = self.parts.settings
        try:
            removed = self.parts.storage.expire_all(
                input_ttl=settings.input_ttl, result_ttl=settings.result_ttl
            )
            if removed:
                logger.info("storage: %d expired objects deleted", removed)
            JobQueue(self.connection, settings).prune_canceled()
        except (StorageError, RedisError, OSError) as exc:
            logger.warning("maintenance failed: %s", exc)


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
    settings = settings_from_args(args, WorkerSettings())
    if not settings.redis_url:
        logger.error("REDIS_URL is not set (or run `mcnet serve`, which starts Redis)")
        return 2
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    try:
        started = time.perf_counter()
        animator = load_animator(settings)
        metrics.model_load_seconds.set(time.perf_counter() - started)
        storage = open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url)
        storage.check()
    except (MCNetError, StorageError, ValueError) as exc:
        logger.error("%s", exc)
        return 2
    name = settings.worker_name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    metrics.info.labels(name, str(animator.device), settings.precision).set(1)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
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
        webhooks=webhooks,
    )
    worker = MCNetWorker([queue], parts, name=name, connection=connection)
    try:
        worker.work(
            burst=args.burst, logging_level=logging.getLevelName(logger.getEffectiveLevel())
        )
    finally:
        if webhooks is not None:
            webhooks.close(grace=settings.webhook_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
