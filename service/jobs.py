"""Jobs on the RQ queue: submit, read status and progress, cancel. Torch-free.

The API enqueues `worker.rq_task.animate_job` by its dotted path, so this module never
imports the worker. Jobs are serialised as JSON (no pickle in Redis). The worker writes
progress into the job's meta (`progress`: stage, frames_done, frames_total) and a
readable `error` when the job fails for a reason its sender can act on.

Cancel is a Redis flag (`mcnet:cancel:<id>`): a queued job is also removed from the
queue at once; a running job sees the flag between frame batches and stops.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import math
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import (
    CanceledJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    StartedJobRegistry,
)
from rq.serializers import JSONSerializer
from rq.utils import utcparse
from rq.worker_registration import get_keys

from service.options import JobOptions
from service.settings import QueueSettings
from service.storage import check_job_id

logger = logging.getLogger(__name__)

TASK = "worker.rq_task.animate_job"
SERIALIZER = JSONSerializer
CANCEL_PREFIX = "mcnet:cancel:"
STAGES = ("queued", "probing", "cropping", "animating", "encoding", "done")


class JobState(enum.StrEnum):
    """The API's words for a job's state."""

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"


_RQ_TO_STATE = {
    JobStatus.CREATED: JobState.QUEUED,
    JobStatus.QUEUED: JobState.QUEUED,
    JobStatus.DEFERRED: JobState.QUEUED,
    JobStatus.SCHEDULED: JobState.QUEUED,
    JobStatus.READY_TO_ENQUEUE: JobState.QUEUED,
    JobStatus.RATE_LIMITED: JobState.QUEUED,
    JobStatus.STARTED: JobState.STARTED,
    JobStatus.FINISHED: JobState.FINISHED,
    JobStatus.FAILED: JobState.FAILED,
    JobStatus.STOPPED: JobState.FAILED,
    JobStatus.CANCELED: JobState.CANCELED,
}


class JobEndedError(Exception):
    """The job has already ended (finished or failed): there is nothing to cancel."""

    def __init__(self, state: JobState) -> None:
        self.state = state
        super().__init__(f"the job has already {state.value}; there is nothing to cancel")


@dataclass(frozen=True)
class JobProgress:
    """Where a job is: its stage and the frames done of all frames."""

    stage: str
    frames_done: int
    frames_total: int

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as stored in job meta and returned by the API."""
        return {
            "stage": self.stage,
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
        }

    def key(self) -> tuple[int, int]:
        """Order of progress: stage first, then frames (a later update never goes back)."""
        index = STAGES.index(self.stage) if self.stage in STAGES else 0
        return (index, self.frames_done)


@dataclass(frozen=True)
class JobInfo:
    """What `GET /jobs/{id}` tells about a job."""

    id: str
    status: JobState
    progress: JobProgress
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    error: str | None
    options: dict[str, Any]
    precision: str | None


def cancel_key(job_id: str) -> str:
    """Redis key of a job's cancel flag."""
    return CANCEL_PREFIX + check_job_id(job_id)


def cancel_requested(connection: Redis, job_id: str) -> bool:
    """Whether the job's owner asked to cancel it."""
    return bool(connection.exists(cancel_key(job_id)))


def job_timeout(frames: int, base: float, per_frame: float) -> int:
    """Seconds a job with `frames` driving frames may run before RQ stops it."""
    return int(math.ceil(base + max(frames, 0) * per_frame))


def state_of(status: JobStatus | str | None, meta: dict[str, Any]) -> JobState:
    """Map an RQ status (and the job's meta) to the API's state."""
    if status is None:
        return JobState.QUEUED
    state = _RQ_TO_STATE.get(JobStatus(status), JobState.QUEUED)
    if state is JobState.FAILED and meta.get("canceled"):
        return JobState.CANCELED
    return state


def progress_of(meta: dict[str, Any], state: JobState) -> JobProgress:
    """The progress a job reports, from its meta."""
    total = int(meta.get("frames_total", 0) or 0)
    raw = meta.get("progress") or {}
    progress = JobProgress(
        stage=str(raw.get("stage", "queued")),
        frames_done=int(raw.get("frames_done", 0) or 0),
        frames_total=int(raw.get("frames_total", total) or total),
    )
    if state is JobState.FINISHED:
        return JobProgress("done", progress.frames_total, progress.frames_total)
    if state is JobState.QUEUED:
        return JobProgress("queued", 0, progress.frames_total)
    return progress


class JobQueue:
    """The queue of animation jobs on one Redis, as the API and the worker see it."""

    def __init__(self, connection: Redis, settings: QueueSettings) -> None:
        self.connection = connection
        self.settings = settings
        self.queue = Queue(settings.queue_name, connection=connection, serializer=SERIALIZER)

    # submission -------------------------------------------------------------------------
    def submit(self, job_id: str, options: JobOptions, frames: int) -> None:
        """Enqueue the animation of the inputs stored for `job_id`."""
        check_job_id(job_id)
        settings = self.settings
        retry = Retry(max=settings.job_retries) if settings.job_retries > 0 else None
        initial = JobProgress("queued", 0, frames)
        self.queue.enqueue_call(
            TASK,
            kwargs={"job_id": job_id, "options": options.model_dump(mode="json"), "frames": frames},
            job_id=job_id,
            timeout=job_timeout(frames, settings.job_timeout_base, settings.job_timeout_per_frame),
            result_ttl=settings.result_ttl,
            failure_ttl=settings.failure_ttl,
            ttl=settings.input_ttl,
            retry=retry,
            description=f"animate {job_id} ({frames} frames)",
            meta={
                "options": options.model_dump(mode="json"),
                "frames_total": frames,
                "progress": initial.as_dict(),
            },
        )

    # reading ----------------------------------------------------------------------------
    def fetch(self, job_id: str) -> Job | None:
        """The RQ job, or None if there is none with this id (or the id is malformed)."""
        try:
            check_job_id(job_id)
            return Job.fetch(job_id, connection=self.connection, serializer=SERIALIZER)
        except (ValueError, NoSuchJobError):
            return None

    def info(self, job_id: str) -> JobInfo | None:
        """Status of a job, or None if unknown. A job whose worker died is recovered first."""
        job = self.fetch(job_id)
        if job is None:
            return None
        if job.get_status(refresh=False) == JobStatus.STARTED:
            self.recover_abandoned()
            job = self.fetch(job_id)
            if job is None:
                return None
        return self._info(job)

    def _info(self, job: Job) -> JobInfo:
        meta = job.meta or {}
        state = state_of(job.get_status(refresh=False), meta)
        error = failure_reason(job, meta, self.settings) if state is JobState.FAILED else None
        if state is JobState.CANCELED:
            error = "The job was canceled by its owner."
        return JobInfo(
            id=job.id,
            status=state,
            progress=progress_of(meta, state),
            created_at=job.created_at,
            started_at=job.started_at,
            ended_at=job.ended_at if state not in (JobState.QUEUED, JobState.STARTED) else None,
            error=error,
            options=dict(meta.get("options") or {}),
            precision=meta.get("precision"),
        )

    def recover_abandoned(self) -> None:
        """Retry (or fail) jobs whose worker stopped sending heartbeats."""
        StartedJobRegistry(
            self.queue.name, connection=self.connection, serializer=SERIALIZER
        ).cleanup()

    # cancel -----------------------------------------------------------------------------
    def cancel(self, job_id: str) -> JobInfo | None:
        """Cancel a job: a queued one never runs, a running one stops between batches.

        Returns the job's status afterwards, None if there is no such job; raises
        JobEndedError when the job has already finished or failed.
        """
        job = self.fetch(job_id)
        if job is None:
            return None
        current = self._info(job)
        if current.status in (JobState.FINISHED, JobState.FAILED):
            raise JobEndedError(current.status)
        ttl = self.settings.failure_ttl + self.settings.input_ttl
        self.connection.set(cancel_key(job_id), b"1", ex=ttl)
        if current.status is JobState.QUEUED:
            try:
                job.cancel()
            except InvalidJobOperation:
                logger.debug("job %s was already canceled", job_id)
            self.connection.expire(job.key, self.settings.failure_ttl)
        self.prune_canceled()
        refreshed = self.fetch(job_id)
        return self._info(refreshed) if refreshed is not None else current

    def prune_canceled(self) -> None:
        """Forget canceled jobs older than the failure TTL (RQ never expires that registry)."""
        registry = CanceledJobRegistry(self.queue.name, connection=self.connection)
        cutoff = dt.datetime.now(dt.UTC).timestamp() - self.settings.failure_ttl
        self.connection.zremrangebyscore(registry.key, 0, cutoff)

    # health and metrics -----------------------------------------------------------------
    def depth(self) -> int:
        """Jobs waiting in the queue."""
        return int(self.queue.count)

    def counts(self) -> dict[str, int]:
        """Jobs known to Redis, by the API's state."""
        name, conn = self.queue.name, self.connection
        return {
            JobState.QUEUED.value: self.depth(),
            JobState.STARTED.value: StartedJobRegistry(name, connection=conn).get_job_count(
                cleanup=False
            ),
            JobState.FINISHED.value: FinishedJobRegistry(name, connection=conn).get_job_count(
                cleanup=False
            ),
            JobState.FAILED.value: FailedJobRegistry(name, connection=conn).get_job_count(
                cleanup=False
            ),
            JobState.CANCELED.value: CanceledJobRegistry(name, connection=conn).get_job_count(
                cleanup=False
            ),
        }

    def live_workers(self) -> int:
        """Workers of this queue whose last heartbeat is recent."""
        keys = sorted(get_keys(queue=self.queue))
        if not keys:
            return 0
        with self.connection.pipeline() as pipe:
            for key in keys:
                pipe.hget(key, "last_heartbeat")
            beats = pipe.execute()
        now = dt.datetime.now(dt.UTC)
        alive = 0
        for beat in beats:
            if not beat:
                continue
            try:
                when = utcparse(beat.decode() if isinstance(beat, bytes) else str(beat))
            except ValueError:
                continue
            if (now - when).total_seconds() <= self.settings.worker_ttl:
                alive += 1
        return alive

    def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(self.connection.ping())
        except RedisError:
            return False


def failure_reason(job: Job, meta: dict[str, Any], settings: QueueSettings) -> str:
    """A readable reason for a failed job; never a traceback."""
    if meta.get("error"):
        return str(meta["error"])
    try:
        result = job.latest_result()
    except (RedisError, ValueError, TypeError):
        result = None
    text = (result.exc_string or "") if result is not None else ""
    if "JobTimeoutException" in text:
        return f"The job ran past its time limit ({job.timeout} s) and was stopped."
    attempts = settings.job_retries + 1
    if "AbandonedJobError" in text or "terminated unexpectedly" in text:
        return (
            f"The worker running this job stopped before it finished ({attempts} attempts); "
            "the job was given up."
        )
    return "The job failed because of an internal error; the service's logs have the details."
