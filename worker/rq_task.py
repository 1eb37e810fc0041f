"""The RQ job function `animate_job`, run by `mcnet worker` (worker.rq_worker).

The API enqueues it by its dotted path (core.protocol.TASK) with the job id, the
validated options and the probe of the driving video. It fetches the inputs from
storage into a temporary folder, runs `worker.task.run_animation` with the worker's
animator (loaded once, passed in through a context variable the worker sets around each
job), reports progress into the job's meta and the worker's metrics, checks the cancel
flag between batches, and stores the MP4 atomically. Domain errors propagate: the worker
records their message as the job's readable failure reason.

Every write to the job is fenced by the run's lease (core.lease): a run that lost the
job stops between batches (LeaseLostError) and writes nothing. Before the result is
stored, the run proves it still owns the job (waiting up to `redis_patience` for Redis,
so a finished render is kept through an outage); a store that refuses the result is
tried again and then reported as "storage unavailable or full" (no re-render). The
inputs are deleted by the worker once the job is recorded finished.
"""

from __future__ import annotations

import contextvars
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job

from core.errors import InvalidInputError, JobCanceledError, StorageUnavailableError
from core.jobs import SERIALIZER, cancel_requested
from core.lease import Lease, LeaseLostError
from core.logs import set_log_field
from core.media_probe import VideoInfo
from core.options import JobOptions
from core.protocol import DEMO_MODEL, Progress, Stage
from core.storage import ObjectMissingError, Storage, StorageError, input_key, result_key
from core.templates import TemplateStore
from worker.media.settings import MediaSettings
from worker.metrics import WorkerMetrics
from worker.redis_retry import retrying
from worker.task import run_animation

if TYPE_CHECKING:
    from model.animator import Animator

logger = logging.getLogger(__name__)

_PROGRESS_EVERY_S = 0.25
_CANCEL_EVERY_S = 0.2
JOB_FOLDER_PREFIX = "mcnet-job-"  # + the worker's pid: folders of dead workers are swept
_STORE_MIN_ATTEMPTS = 4  # tries of the result's write, however short the patience
_STORE_FIRST_WAIT_S = 1.0
_STORE_MAX_WAIT_S = 10.0


class ShutdownRequeueError(Exception):
    """The worker is shutting down: the job stopped between batches and goes back to the queue."""


@dataclass(frozen=True)
class WorkerContext:
    """What a job needs from the worker that runs it."""

    animator: Animator
    storage: Storage
    connection: Redis
    metrics: WorkerMetrics
    should_stop: Callable[[], bool]
    lease: Lease  # of this run of the job
    lost: threading.Event = field(default_factory=threading.Event)  # the lease is lost
    redis_patience: float = 0.0
    work_dir: Path | None = None
    media_settings: MediaSettings | None = None
    model: str = DEMO_MODEL  # the model's label (worker.model_loading.describe_model)
    on_progress: Callable[[Progress], None] | None = None  # webhooks (worker.webhooks)
    templates: TemplateStore | None = None  # the motion templates (worker.template_task)

    def write_meta(self, job: Job) -> None:
        """Store the job's meta if this run still owns the job (else flag the loss)."""
        if not self.lease.hset("meta", SERIALIZER.dumps(job.meta)):
            self.lost.set()


_CONTEXT: contextvars.ContextVar[WorkerContext] = contextvars.ContextVar("mcnet_worker_context")


@contextmanager
def worker_context(context: WorkerContext) -> Iterator[None]:
    """Make `context` the one `animate_job` uses while the block runs."""
    token = _CONTEXT.set(context)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_context(task: str) -> WorkerContext:
    """The context of the worker running `task` (RuntimeError outside `mcnet worker`)."""
    context = _CONTEXT.get(None)
    if context is None:
        raise RuntimeError(f"{task} runs inside `mcnet worker`, which loads the model")
    return context


class ProgressReporter:
    """Progress into job meta (throttled, never going back) and into the worker's gauges."""

    def __init__(
        self,
        job: Job | None,
        metrics: WorkerMetrics,
        frames_total: int,
        write: Callable[[Job], None],
        on_write: Callable[[Progress], None] | None = None,
        *,
        renders: bool = True,
    ) -> None:
        """`renders`: the frames of the animating stage are rendered frames (counted in the
        frames and speed metrics); not so for a template's extraction."""
        self.job = job
        self.metrics = metrics
        self.renders = renders
        self._save = write
        self.on_write = on_write
        self.last = Progress(Stage.QUEUED, 0, frames_total)
        self._written_at = 0.0
        self._batch_started = time.perf_counter()
        self._rendered, self._render_seconds = 0, 0.0  # this job's animating stage
        self._lock = threading.Lock()
        metrics.frames_done.set(0)
        metrics.frames_total.set(frames_total)

    def update(self, progress: Progress) -> None:
        """Callback of `run_animation`: one update per stage change or frame batch."""
        total = progress.frames_total or self.last.frames_total
        current = Progress(progress.stage, progress.frames_done, total)
        with self._lock:
            previous = self.last
            if current.key() < previous.key():
                return
            now = time.perf_counter()
            if current.stage is Stage.ANIMATING and self.renders:
                done = current.frames_done - (
                    previous.frames_done if previous.stage is Stage.ANIMATING else 0
                )
                if done > 0:
                    self.metrics.frames.inc(done)
                    self.metrics.batch_seconds.observe(now - self._batch_started)
                    self._rendered += done
                    self._render_seconds += now - self._batch_started
                    if self._render_seconds > 0:
                        self.metrics.render_fps.labels(self.metrics.device).set(
                            self._rendered / self._render_seconds
                        )
            self._batch_started = now
            if current.stage != previous.stage:
                set_log_field("stage", current.stage.value)
            self.last = current
            self.metrics.frames_done.set(current.frames_done)
            self.metrics.frames_total.set(current.frames_total)
            due = (
                current.stage != previous.stage
                or current.frames_done >= current.frames_total
                or now - self._written_at >= _PROGRESS_EVERY_S
            )
            if due:
                self._write(current)
                self._written_at = now
                if self.on_write is not None:
                    self.on_write(current)

    def _write(self, progress: Progress) -> None:
        if self.job is None:
            return
        self.job.meta["progress"] = progress.as_dict()
        try:
            self._save(self.job)
        except RedisError as exc:
            logger.warning("job %s: progress not saved: %s", self.job.id, exc)


class StopCheck:
    """`should_cancel` of the task: the cancel flag (read at most every 0.2 s), shutdown,
    or the loss of the job's lease."""

    def __init__(
        self,
        canceled: Callable[[], bool],
        shutting_down: Callable[[], bool],
        lost: threading.Event | None = None,
    ) -> None:
        self._canceled = canceled
        self._shutting_down = shutting_down
        self._lost = lost or threading.Event()
        self._checked_at = float("-inf")
        self.reason: str | None = None

    def __call__(self) -> bool:
        if self.reason is not None:
            return True
        if self._lost.is_set():
            self.reason = "lost"
            return True
        if self._shutting_down():
            self.reason = "shutdown"
            return True
        now = time.monotonic()
        if now - self._checked_at >= _CANCEL_EVERY_S:
            self._checked_at = now
            try:
                if self._canceled():
                    self.reason = "canceled"
            except RedisError as exc:
                logger.warning("cancel flag not readable: %s", exc)
        return self.reason is not None


def animate_job(job_id: str, options: dict[str, Any], video: dict[str, Any]) -> dict[str, Any]:
    """Animate the stored inputs of `job_id`; store `results/<id>.mp4`; return a summary.

    `video` is the API's probe of the driving video (core.media_probe.VideoInfo), which
    the task takes instead of probing again. Raises core.errors exceptions for bad inputs,
    JobCanceledError when canceled, and ShutdownRequeueError when the worker is shutting
    down and the job must run again.
    """
    context = current_context("animate_job")
    job = get_current_job()
    if job is not None:  # part of the result's contract; saved with the first progress
        job.meta["precision"] = context.animator.precision
    connection = context.connection
    patience = context.redis_patience
    if retrying(lambda: cancel_requested(connection, job_id), "cancel check", patience):
        raise JobCanceledError("The job was canceled before it started.")
    if job is not None:  # which model makes the result: the job JSON shows it
        job.meta["model"] = context.model
        job.save_meta()
    job_options = JobOptions.model_validate(options)
    probed = VideoInfo(**video)
    frames = probed.frames
    reporter = ProgressReporter(
        job, context.metrics, frames, context.write_meta, context.on_progress
    )
    should_cancel = StopCheck(
        lambda: cancel_requested(connection, job_id), context.should_stop, context.lost
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(
        dir=context.work_dir, prefix=f"{JOB_FOLDER_PREFIX}{os.getpid()}-"
    ) as folder:
        source, driving = Path(folder) / "source", Path(folder) / "driving"
        output = Path(folder) / "result.mp4"
        fetch_inputs(context.storage, job_id, source, driving)
        with stop_reasons(should_cancel, job_id):
            summary = run_animation(
                source,
                driving,
                output,
                job_options,
                context.animator,
                progress=reporter.update,
                should_cancel=should_cancel,
                settings=context.media_settings,
                video=probed,
                model=context.model,
            )
        size = output.stat().st_size
        store_product(
            context,
            job,
            job_id,
            result_key(job_id),
            output,
            summary.warnings,
            canceled="The job was canceled before its result was stored.",
        )
    reporter.update(Progress(Stage.DONE, reporter.last.frames_total, reporter.last.frames_total))
    seconds = time.perf_counter() - started
    logger.info("job %s: %d frames in %.1f s (%d bytes)", job_id, frames, seconds, size)
    return {
        "result": result_key(job_id),
        "bytes": size,
        "seconds": round(seconds, 3),
        **_fields(summary),
    }


@contextmanager
def stop_reasons(should_cancel: StopCheck, job_id: str) -> Iterator[None]:
    """A JobCanceledError of the block as what stopped it: the worker's shutdown
    (ShutdownRequeueError), the lease lost (LeaseLostError), or the owner's cancel."""
    try:
        yield
    except JobCanceledError:
        if should_cancel.reason == "shutdown":
            raise ShutdownRequeueError("the worker is shutting down") from None
        if should_cancel.reason == "lost":
            raise LeaseLostError(f"job {job_id} belongs to another run") from None
        raise


def prove_lease(context: WorkerContext, patience: float) -> None:
    """Raise LeaseLostError unless this run still owns the job (waits for Redis)."""
    if context.lost.is_set() or not retrying(context.lease.renew, "lease check", patience):
        context.lost.set()
        raise LeaseLostError(f"job {context.lease.job_id} belongs to another run")


def store_product(
    context: WorkerContext,
    job: Job | None,
    job_id: str,
    key: str,
    output: Path,
    warnings: Sequence[str],
    *,
    canceled: str,
    what: str = "result",
) -> None:
    """The end of a run that made `output`: stop (JobCanceledError: `canceled`) when the
    job was canceled meanwhile, prove the run still owns it, record its `warnings`, then
    store the product under `key`. Every write is fenced by the lease."""
    patience = context.redis_patience
    if retrying(lambda: cancel_requested(context.connection, job_id), "cancel check", patience):
        raise JobCanceledError(canceled)
    prove_lease(context, patience)
    if warnings and job is not None:
        job.meta["warnings"] = list(warnings)
        retrying(lambda: context.write_meta(job), "warnings", patience)
        prove_lease(context, patience)
    _store_patiently(context.storage, job_id, key, output, patience, what)


def _store_patiently(
    storage: Storage, job_id: str, key: str, output: Path, patience: float, what: str = "result"
) -> None:
    """Store a job's product (the MP4, a template) under `key`, trying again while the
    store refuses, for as long as the job waits for Redis (`patience`, at least a few
    tries); the file is kept meanwhile and the work is never redone."""
    deadline = time.monotonic() + patience
    wait = _STORE_FIRST_WAIT_S
    attempt = 1
    while True:
        try:
            storage.put_file(key, output, move=False)
            return
        except (StorageError, OSError) as exc:
            logger.warning("job %s: %s not stored (attempt %d): %s", job_id, what, attempt, exc)
            if attempt >= _STORE_MIN_ATTEMPTS and time.monotonic() >= deadline:
                raise StorageUnavailableError(f"store the {what}") from exc
            time.sleep(wait)
            wait = min(wait * 2, _STORE_MAX_WAIT_S)
            attempt += 1


def fetch_inputs(storage: Storage, job_id: str, source: Path | None, driving: Path) -> None:
    """The job's inputs into local files (`source` None: a template's, which has none)."""
    try:
        if source is not None:
            storage.get_file(input_key(job_id, "source"), source)
        storage.get_file(input_key(job_id, "driving"), driving)
    except ObjectMissingError as exc:
        raise InvalidInputError(
            "The uploaded files of this job are gone (expired or removed); please submit it again."
        ) from exc


def _fields(summary: Any) -> dict[str, Any]:
    """JSON-safe scalar fields of the task's result (frames, fps, ...)."""
    raw = getattr(summary, "__dict__", None) or {}
    if hasattr(summary, "__dataclass_fields__"):
        raw = {name: getattr(summary, name) for name in summary.__dataclass_fields__}
    return {k: v for k, v in raw.items() if isinstance(v, int | float | str | bool) or v is None}
