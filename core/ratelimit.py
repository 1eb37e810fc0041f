"""Per-key limits: requests per minute and jobs running at once. Torch-free.

Requests are counted in a fixed one-minute window per key (`INCR` on
`mcnet:rate:<queue>:<key name>:<minute>`, expiring with the window). Running jobs are
the key's jobs queued or started: their ids sit in `mcnet:active:<queue>:<key name>` (a
sorted set by submit time) and ended or expired ones are pruned whenever it is read.
Concurrent submits of one key are checked one by one, not atomically, so a burst may
pass the job limit by the number of submits in flight.
"""

from __future__ import annotations

import time

from redis import Redis

from core.errors import RateLimitedError
from core.jobs import JobQueue
from core.protocol import JobState

RATE_PREFIX = "mcnet:rate:"
ACTIVE_PREFIX = "mcnet:active:"
WINDOW_SECONDS = 60
CONCURRENCY_RETRY_AFTER = 10
_RUNNING = (JobState.QUEUED, JobState.STARTED)


class KeyLimits:
    """The limits of every key on one Redis, for one queue; None: no such limit."""

    def __init__(
        self,
        connection: Redis,
        jobs: JobQueue,
        requests_per_minute: int | None,
        concurrent_jobs: int | None,
        retention: int,
    ) -> None:
        self.connection = connection
        self.jobs = jobs
        self.requests_per_minute = requests_per_minute
        self.concurrent_jobs = concurrent_jobs
        self.retention = retention
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
            )

    def _active_key(self, owner: str) -> str:
        return f"{ACTIVE_PREFIX}{self.queue_name}:{owner}"

    def running(self, owner: str) -> int:
        """The owner's jobs queued or started (ended and expired ones are pruned)."""
        key = self._active_key(owner)
        members: list[bytes] = self.connection.zrange(key, 0, -1)  # type: ignore[assignment]
        ids = [member.decode() for member in members]
        infos = self.jobs.infos(ids)
        live = {job_id for job_id, info in infos.items() if info.status in _RUNNING}
        ended = [job_id for job_id in ids if job_id not in live]
        if ended:
            self.connection.zrem(key, *ended)
        return len(ids) - len(ended)

    def check_jobs(self, owner: str) -> None:
        """RateLimitedError when the owner already has its most jobs queued or started."""
        if self.concurrent_jobs is not None and self.running(owner) >= self.concurrent_jobs:
            raise RateLimitedError(
                f"This key already has {self.concurrent_jobs} job(s) queued or running, its "
                "limit; wait for one to end (or cancel one), then submit again.",
                CONCURRENCY_RETRY_AFTER,
            )

    def track(self, owner: str, job_id: str) -> None:
        """Count `job_id` among the owner's running jobs until it ends."""
        if self.concurrent_jobs is None:
            return
        key = self._active_key(owner)
        with self.connection.pipeline() as pipe:
            pipe.zadd(key, {job_id: time.time()})
            pipe.expire(key, self.retention)
            pipe.execute()
