"""Jobs on the RQ queue: submit, read status and progress, cancel. Torch-free.

The API enqueues `core.protocol.TASK` by its dotted path, so this module never imports
the worker. Jobs are serialised as JSON (no pickle in Redis). The worker writes progress
into the job's meta (`progress`: a core.protocol.Progress) and, when a run fails, its
`outcome` (a core.protocol.JobOutcome with a readable error when the sender can act on it).
Reading a job writes nothing: a job whose worker died (its lease lapsed, core.lease) is
shown as it will be once a live worker's recovery has retried or failed it.

Cancel is a Redis flag (`mcnet:cancel:<id>`): a queued job is also removed from the
queue at once; a running job sees the flag between frame batches and stops.

The extraction of a motion template (core.templates) is an RQ job of the same queue (so
the queue's length counts all work), marked `kind: template` in its meta: `fetch`, `info`
and `cancel` never see it as a job; `extraction` and `cancel_extraction` do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
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
from rq.utils import now as utcnow
from rq.utils import utcformat
from rq.worker import BaseWorker

from core.errors import JobNotFoundError, JobStateError
from core.estimate import SPEED_FIELDS, Workload, own_speed, speed_of
from core.job_view import JobView
from core.lease import has_owner, shut_down
from core.liveness import WorkerState, live_workers, withdraw
from core.media_probe import VideoInfo
from core.options import JobOptions
from core.protocol import (
    TASK,
    TEMPLATE_KIND,
    TEMPLATE_TASK,
    JobOutcome,
    JobState,
    Outcome,
    Progress,
    Stage,
    job_timeout,
    time_limit_message,
)
from core.settings import QueueSettings
from core.storage import check_job_id
from core.webhooks import outbox_key

logger = logging.getLogger(__name__)

SERIALIZER = JSONSerializer
CANCEL_PREFIX = "mcnet:cancel:"
CANCELED_MESSAGE = "The job was canceled by its owner."

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


def cancel_key(job_id: str) -> str:
    """Redis key of a job's cancel flag."""
    return CANCEL_PREFIX + check_job_id(job_id)


def cancel_requested(connection: Redis, job_id: str) -> bool:
    """Whether the job's owner asked to cancel it."""
    return bool(connection.exists(cancel_key(job_id)))


def state_of(status: JobStatus | str | None, meta: dict[str, Any]) -> JobState:
    """Map an RQ status (and the job's meta) to the API's state."""
    if status is None:
        return JobState.QUEUED
    state = _RQ_TO_STATE.get(JobStatus(status), JobState.QUEUED)
    outcome = JobOutcome.from_meta(meta)
    if state is JobState.FAILED and outcome is not None and outcome.outcome is Outcome.CANCELED:
        return JobState.CANCELED
    return state


def progress_of(meta: dict[str, Any], state: JobState) -> Progress:
    """The progress a job reports, from its meta."""
    total = int(meta.get("frames_total", 0) or 0)
    raw = meta.get("progress") or {}
    stage = raw.get("stage", Stage.QUEUED)
    progress = Progress(
        stage=Stage(stage) if stage in Stage.__members__.values() else Stage.QUEUED,
        frames_done=int(raw.get("frames_done", 0) or 0),
        frames_total=int(raw.get("frames_total", total) or total),
    )
    if state is JobState.FINISHED:
        return Progress(Stage.DONE, progress.frames_total, progress.frames_total)
    if state is JobState.QUEUED:
        return Progress(Stage.QUEUED, 0, progress.frames_total)
    return progress


class JobQueue:
    """The queue of animation jobs on one Redis, as the API and the worker see it."""

    def __init__(self, connection: Redis, settings: QueueSettings) -> None:
        self.connection = connection
        self.settings = settings
        self.queue = Queue(settings.queue_name, connection=connection, serializer=SERIALIZER)

    # submission -------------------------------------------------------------------------
    def submit(
        self,
        job_id: str,
        options: JobOptions,
        video: VideoInfo,
        extra_meta: dict[str, Any] | None = None,
    ) -> None:
        """Enqueue the animation of the inputs stored for `job_id`; `video` is the probe of
        its driving video (or the facts of its motion template), which the worker takes as
        it is; `extra_meta` (the webhook, the template's id) goes into the job's meta."""
        self._enqueue(
            TASK,
            job_id,
            {
                "job_id": job_id,
                "options": options.model_dump(mode="json"),
                "video": dataclasses.asdict(video),
            },
            video.frames,
            f"animate {job_id} ({video.frames} frames)",
            {"options": options.model_dump(mode="json"), **(extra_meta or {})},
        )

    def submit_template(
        self,
        template_id: str,
        crop: str,
        video: VideoInfo,
        extra_meta: dict[str, Any] | None = None,
    ) -> None:
        """Enqueue the extraction of the motion template whose video is stored as the
        `driving` input of `template_id`; `video` is the API's probe of it."""
        self._enqueue(
            TEMPLATE_TASK,
            template_id,
            {"template_id": template_id, "crop": crop, "video": dataclasses.asdict(video)},
            video.frames,
            f"extract template {template_id} ({video.frames} frames)",
            {"kind": TEMPLATE_KIND, **(extra_meta or {})},
        )

    def _enqueue(
        self,
        task: str,
        job_id: str,
        kwargs: dict[str, Any],
        frames: int,
        description: str,
        meta: dict[str, Any],
    ) -> None:
        check_job_id(job_id)
        settings = self.settings
        retry = Retry(max=settings.job_retries) if settings.job_retries > 0 else None
        initial = Progress(Stage.QUEUED, 0, frames)
        self.queue.enqueue_call(
            task,
            kwargs=kwargs,
            job_id=job_id,
            timeout=job_timeout(frames, settings.job_timeout_base, settings.job_timeout_per_frame),
            result_ttl=settings.result_ttl,
            failure_ttl=settings.failure_ttl,
            ttl=settings.input_ttl,
            retry=retry,
            description=description,
            meta={"frames_total": frames, "progress": initial.as_dict(), **meta},
        )

    # reading ----------------------------------------------------------------------------
    def fetch(self, job_id: str) -> Job | None:
        """The RQ job of an animation, or None if there is none with this id (or the id is
        malformed, or names a template's extraction)."""
        job = self._fetch(job_id)
        return job if job is not None and not is_template_job(job) else None

    def _fetch(self, job_id: str) -> Job | None:
        try:
            check_job_id(job_id)
            return Job.fetch(job_id, connection=self.connection, serializer=SERIALIZER)
        except (ValueError, NoSuchJobError):
            return None

    def extraction(self, template_id: str) -> JobView | None:
        """The state of a template's extraction job (read only); None once Redis has
        forgotten it (or it is not a template's)."""
        job = self._fetch(template_id)
        return self._info(job) if job is not None and is_template_job(job) else None

    def info(self, job_id: str) -> JobView:
        """Status of a job (read only); JobNotFoundError if there is none with this id."""
        job = self.fetch(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return self._info(job)

    def infos(self, job_ids: list[str]) -> dict[str, JobView]:
        """Status of several jobs, read in one round trip (read only); ids of jobs that do
        not exist (or are malformed) are left out."""
        valid = []
        for job_id in job_ids:
            try:
                valid.append(check_job_id(job_id))
            except ValueError:
                continue
        if not valid:
            return {}
        found = [
            job
            for job in Job.fetch_many(valid, connection=self.connection, serializer=SERIALIZER)
            if job is not None and not is_template_job(job)
        ]
        waiting = any(
            state_of(job.get_status(refresh=False), job.meta or {}) is JobState.QUEUED
            for job in found
        )
        positions = self.queue_positions() if waiting else {}  # the queue's order, read once
        active = any(
            state_of(job.get_status(refresh=False), job.meta or {})
            in (JobState.QUEUED, JobState.STARTED)
            for job in found
        )
        workload = self.workload(queued=waiting) if active else None  # read once, too
        return {job.id: self._info(job, positions, workload) for job in found}

    def queue_positions(self) -> dict[str, int]:
        """Place of each waiting job in the queue (1: the next to run), in one read."""
        return {job_id: place for place, job_id in enumerate(self.queue.get_job_ids(), 1)}

    def workload(self, *, queued: bool = True) -> Workload:
        """The live workers' speeds, the running jobs' frames left and (with `queued`) the
        frames of each waiting job in queue order: what each job's estimate needs."""
        speeds = [speed_of(*fields) for fields in self._worker_records(*SPEED_FIELDS)]
        registry = StartedJobRegistry(self.queue.name, connection=self.connection)
        running = self._metas(list(dict.fromkeys(registry.get_job_ids(cleanup=False))))
        left = 0
        for meta in running:
            progress = progress_of(meta, JobState.STARTED)
            left += max(0, progress.frames_total - progress.frames_done)
        waiting = self._metas(self.queue.get_job_ids()) if queued else []
        return Workload(
            speeds=tuple(speed for speed in speeds if speed is not None),
            running_frames_left=left,
            queued_frames=tuple(int(meta.get("frames_total", 0) or 0) for meta in waiting),
        )

    def _metas(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """The meta of each job that still exists, in the order given, in one read."""
        if not job_ids:
            return []
        jobs = Job.fetch_many(job_ids, connection=self.connection, serializer=SERIALIZER)
        return [job.meta or {} for job in jobs if job is not None]

    def _estimate(
        self, state: JobState, progress: Progress, job: Job, position: int | None, load: Workload
    ) -> float | None:
        if state is JobState.QUEUED and position is not None:
            return load.queued_seconds(position)
        if state is JobState.QUEUED:  # out of the queue, being handed to a worker
            return load.started_seconds(progress.frames_total, None)
        if state is JobState.STARTED:
            running = (utcnow() - job.started_at).total_seconds() if job.started_at else 0.0
            return load.started_seconds(
                progress.frames_total - progress.frames_done,
                own_speed(progress.frames_done, running),
            )
        return None

    def _info(
        self,
        job: Job,
        positions: dict[str, int] | None = None,
        workload: Workload | None = None,
    ) -> JobView:
        """`positions`: the queue's places (queue_positions), `workload`: what the
        estimates need (workload()), when read already."""
        meta = job.meta or {}
        state = state_of(job.get_status(refresh=False), meta)
        error = failure_reason(job, meta, self.settings) if state is JobState.FAILED else None
        if state is JobState.STARTED and self._abandoned(job):
            # Its worker died; a live worker's maintenance retries or fails it. Until then
            # it is shown as it will be, without writing anything here. A worker that was
            # shut down (core.lease.shut_down) spends no retry.
            if job.retries_left or shut_down(self.connection, job.id):
                state = JobState.QUEUED
            else:
                state, error = JobState.FAILED, abandoned_message(self.settings)
        if state is JobState.CANCELED:
            error = CANCELED_MESSAGE
        progress = progress_of(meta, state)
        position = (
            (self.queue_positions() if positions is None else positions).get(job.id)
            if state is JobState.QUEUED
            else None
        )
        estimate = None
        if state in (JobState.QUEUED, JobState.STARTED):
            load = workload if workload is not None else self.workload()
            estimate = self._estimate(state, progress, job, position, load)
        return JobView(
            id=job.id,
            status=state,
            progress=progress,
            created_at=job.created_at,
            started_at=job.started_at,
            ended_at=job.ended_at if state not in (JobState.QUEUED, JobState.STARTED) else None,
            error=error,
            options=dict(meta.get("options") or {}),
            warnings=[str(w) for w in meta.get("warnings") or []],
            precision=meta.get("precision"),
            model=meta.get("model"),
            queue_position=position,
            estimated_seconds=estimate,
            template=meta.get("template"),
        )

    def _abandoned(self, job: Job) -> bool:
        """Whether the running job's lease has lapsed: its worker stopped renewing it
        (a read, no cleanup; core.lease)."""
        return not has_owner(self.connection, job.id)

    # cancel -----------------------------------------------------------------------------
    def cancel(self, job_id: str) -> JobView:
        """Cancel a job: a queued one never runs, a running one stops between batches.

        Returns the job's status afterwards. Raises JobNotFoundError when there is no such
        job, JobStateError when it has already finished or failed.
        """
        job = self.fetch(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return self._cancel(job)

    def cancel_extraction(self, template_id: str) -> None:
        """Cancel a template's extraction if it is still queued or running (else nothing)."""
        job = self._fetch(template_id)
        if job is not None and is_template_job(job) and not self._info(job).status.ended:
            self._cancel(job)

    def _cancel(self, job: Job) -> JobView:
        job_id = job.id
        current = self._info(job)
        if current.status.ended:
            ended = "been canceled" if current.status is JobState.CANCELED else current.status.value
            raise JobStateError(f"The job has already {ended}; there is nothing to cancel.")
        ttl = self.settings.failure_ttl + self.settings.input_ttl
        self.connection.set(cancel_key(job_id), b"1", ex=ttl)
        if current.status is JobState.QUEUED and self._dequeue(job):
            self.connection.hset(job.key, "ended_at", utcformat(utcnow()))
            self.connection.expire(job.key, self.settings.failure_ttl)
            if (job.meta or {}).get("webhook"):  # no worker runs it: one sends `completed`
                self.connection.rpush(outbox_key(self.queue.name), job_id)
                self.connection.expire(outbox_key(self.queue.name), self.settings.failure_ttl)
        self.prune_canceled()
        refreshed = self._fetch(job_id)
        return self._info(refreshed) if refreshed is not None else current

    @staticmethod
    def _dequeue(job: Job) -> bool:
        """Cancel a queued job in RQ; False when a worker took it meanwhile (RQ then finds
        no queued execution to cancel): the cancel flag, set first, stops that run between
        batches, and its worker records it canceled."""
        try:
            job.cancel()
        except InvalidJobOperation:
            logger.debug("job %s was already canceled", job.id)
        except ValueError as exc:  # RQ: "Execution ... not found in Redis"
            logger.info(
                "job %s was taken by a worker while canceled; it stops there (%s)", job.id, exc
            )
            return False
        return True

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
        """Workers of this queue that are alive and take jobs (core.liveness)."""
        return sum(1 for state in self.worker_states() if state.problem is None)

    def live_models(self) -> list[str]:
        """The model label of each live worker of this queue that takes jobs."""
        return [state.model for state in self.worker_states() if state.problem is None]

    def worker_states(self) -> list[WorkerState]:
        """What each live worker of this queue announced: its model, and why it takes no
        jobs when it cannot."""
        return live_workers(self.connection, self.queue.name)

    def record_worker_start(self, result: str) -> None:
        """Count a worker's start by its result (`loaded`: its model loaded; `failed`: it
        could not start). The API exports the counts (mcnet_worker_starts_total), so a worker
        that never lives long enough to be scraped still shows."""
        self.connection.hincrby(self._starts_key, result, 1)

    def worker_starts(self) -> dict[str, int]:
        """Workers' starts by result, since Redis began counting."""
        raw = self.connection.hgetall(self._starts_key)
        counts = {"loaded": 0, "failed": 0}
        for key, value in raw.items():
            counts[key.decode() if isinstance(key, bytes) else str(key)] = int(value)
        return counts

    @property
    def _starts_key(self) -> str:
        return f"mcnet:{self.queue.name}:worker-starts"

    def _worker_records(self, *fields: str) -> list[tuple[Any, ...]]:
        """`fields` of the RQ record of each live worker of this queue, in one read."""
        names = [state.name for state in self.worker_states() if state.problem is None]
        if not names:
            return []
        with self.connection.pipeline() as pipe:
            for name in names:
                pipe.hmget(BaseWorker.redis_worker_namespace_prefix + name, *fields)
            return [tuple(values) for values in pipe.execute()]

    def forget_worker(self, name: str) -> None:
        """Drop the registration of a worker known to have exited (a crash leaves it
        behind), so that readiness stops counting it at once."""
        self.connection.delete(BaseWorker.redis_worker_namespace_prefix + name)
        withdraw(self.connection, self.queue.name, name)

    def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(self.connection.ping())
        except RedisError:
            return False


def is_template_job(job: Job) -> bool:
    """Whether the RQ job extracts a motion template (not an animation)."""
    return (job.meta or {}).get("kind") == TEMPLATE_KIND


def failure_reason(job: Job, meta: dict[str, Any], settings: QueueSettings) -> str:
    """A readable reason for a failed job; never a traceback."""
    outcome = JobOutcome.from_meta(meta)
    if outcome is not None and outcome.error:
        return outcome.error
    try:
        result = job.latest_result()
    except (RedisError, ValueError, TypeError):
        result = None
    text = (result.exc_string or "") if result is not None else ""
    if "JobTimeoutException" in text:
        return time_limit_message(job.timeout)
    if "AbandonedJobError" in text or "terminated unexpectedly" in text:
        return abandoned_message(settings)
    return "The job failed because of an internal error; the service's logs have the details."


def abandoned_message(settings: QueueSettings) -> str:
    """The reason a job whose worker died, with no retries left, shows."""
    attempts = settings.job_retries + 1
    return (
        f"The worker running this job stopped before it finished ({attempts} attempts); "
        "the job was given up."
    )
