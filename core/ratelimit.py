"""Every limit that answers 429, per key and for the service: requests per minute, jobs
queued or running at once, driving frames per hour, bytes of motion templates kept, and
the queue's length. Torch-free.

Each refusal is one `RateLimitedError` carrying the key's name and its `LimitReason`.

Requests are counted in a fixed one-minute window per key (`INCR` on
`mcnet:rate:<queue>:<key name>:<minute>`, expiring with the window). A key's running jobs
are those of its jobs (core.ownership's one set of a key's jobs) still queued or started.
Frames are counted per key in a fixed one-hour window (`mcnet:budget:<key name>:<hour>`).
A key's template bytes are those of its made templates (core.templates).
Concurrent submits of one key are checked one by one, not atomically, so a burst may
pass the job limit by the number of submits in flight.
"""

from __future__ import annotations

import time

from redis import Redis

from core.errors import LimitReason, RateLimitedError
from core.jobs import JobQueue
from core.ownership import JobOwners
from core.protocol import JobState
from core.templates import TemplateStore

RATE_PREFIX = "mcnet:rate:"
BUDGET_PREFIX = "mcnet:budget:"
WINDOW_SECONDS = 60
BUDGET_WINDOW_SECONDS = 3600
CONCURRENCY_RETRY_AFTER = 10
QUEUE_FULL_RETRY_AFTER = 60
BUDGET_RETRY_AFTER = 600
_RUNNING = (JobState.QUEUED, JobState.STARTED)


class KeyLimits:
    """The limits of every key on one Redis, for one queue; None or 0: no such limit."""

    def __init__(
        self,
        connection: Redis,
        jobs: JobQueue,
        owners: JobOwners,
        requests_per_minute: int | None,
        concurrent_jobs: int | None,
        max_queued_jobs: int = 0,
        frames_per_hour: int = 0,
        templates: TemplateStore | None = None,
        template_bytes: int = 0,
    ) -> None:
        self.connection = connection
        self.jobs = jobs
        self.owners = owners
        self.requests_per_minute = requests_per_minute
        self.concurrent_jobs = concurrent_jobs
        self.max_queued_jobs = max_queued_jobs
        self.frames_per_hour = frames_per_hour
        self.templates = templates
        self.template_bytes = template_bytes
        self.queue_name = jobs.queue.name

    def count_request(self, owner: str, now: float | None = None) -> None:
        """Count one request of `owner`; RateLimitedError when it is over the minute's."""
        if self.requests_per_minute is None:
            return
        now = time.time() if now is None else now
        window = int(now // WINDOW_SECONDS)
        key = f"{RATE_PREFIX}{self.queue_name}:{owner}:{window}"
        with self.connection.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS + 5)
            count = int(pipe.execute()[0])
        if count > self.requests_per_minute:
            retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
            raise RateLimitedError(
                f"Too many requests: this key may make {self.requests_per_minute} per minute; "
                f"try again in {retry_after} s.",
                retry_after,
                owner,
                LimitReason.REQUESTS,
            )

    def running(self, owner: str) -> int:
        """The owner's jobs queued or started (expired ones are forgotten)."""
        ids = self.owners.job_ids(owner)
        infos = self.jobs.infos(ids)
        self.owners.forget(owner, [job_id for job_id in ids if job_id not in infos])
        return sum(1 for info in infos.values() if info.status in _RUNNING)

    def check_jobs(self, owner: str) -> None:
        """RateLimitedError when the owner already has its most jobs queued or started."""
        if self.concurrent_jobs is not None and self.running(owner) >= self.concurrent_jobs:
            raise RateLimitedError(
                f"This key already has {self.concurrent_jobs} job(s) queued or running, its "
                "limit; wait for one to end (or cancel one), then submit again.",
                CONCURRENCY_RETRY_AFTER,
                owner,
                LimitReason.CONCURRENT_JOBS,
            )

    def check_queue(self, owner: str) -> None:
        """RateLimitedError when the queue holds its most waiting jobs (templates included)."""
        if self.max_queued_jobs and self.jobs.depth() >= self.max_queued_jobs:
            raise RateLimitedError(
                "The queue is full; please submit again in a minute.",
                QUEUE_FULL_RETRY_AFTER,
                owner,
                LimitReason.QUEUE_FULL,
            )

    def check_template_storage(self, owner: str, now: float | None = None) -> None:
        """RateLimitedError when the owner's made templates hold its bytes already;
        Retry-After: until the first of them expires."""
        if not self.template_bytes or self.templates is None:
            return
        now = time.time() if now is None else now
        used, first_expiry = self.templates.usage(owner)
        if used < self.template_bytes:
            return
        wait = max(1, int((first_expiry or now + 60) - now + 0.999))
        raise RateLimitedError(
            f"This API key keeps {used} bytes of motion templates, its limit of "
            f"{self.template_bytes}; delete one (DELETE /templates/{{id}}) or wait {wait} s "
            "for the oldest to expire.",
            wait,
            owner,
            LimitReason.TEMPLATE_STORAGE,
        )

    def check_submit(self, owner: str, frames: int) -> None:
        """The queue's length, then the owner's frame budget (counting `frames` against it
        when they fit); RateLimitedError beyond either."""
        self.check_queue(owner)
        if self.frames_per_hour and not self._spend_frames(owner, frames):
            raise RateLimitedError(
                f"This API key has used its budget of {self.frames_per_hour} driving frames "
                "for this hour; please try again later.",
                BUDGET_RETRY_AFTER,
                owner,
                LimitReason.FRAME_BUDGET,
            )

    def _spend_frames(self, owner: str, frames: int) -> bool:
        """Count `frames` against the owner's budget of this hour; False (and nothing
        counted) when they do not fit."""
        window = int(time.time()) // BUDGET_WINDOW_SECONDS
        key = f"{BUDGET_PREFIX}{owner}:{window}"
        used = int(self.connection.incrby(key, frames))
        self.connection.expire(key, BUDGET_WINDOW_SECONDS)
        if used > self.frames_per_hour:
            self.connection.decrby(key, frames)
            return False
        return True
