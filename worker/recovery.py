"""Recovery of jobs whose worker is gone: by lease expiry, from a thread of every worker.

Every `recovery_interval` seconds each worker looks at the jobs its queues show as
running. A job whose lease (core.lease) has expired is claimed (atomically: one claimer,
and never while its owner renews) and put back in the queue while it has retries left,
else failed with a readable reason. A job whose worker was shut down (SIGTERM, then
killed before it could put the job back: core.lease's shutdown mark) goes back to the
front of the queue without spending a retry. A dead worker's job is thus noticed within
`lease_ttl + recovery_interval` seconds, whether or not anyone polls the API.

After its own connection to Redis was broken or stalled, a worker recovers nothing until
Redis has answered it for a whole `lease_ttl`: the owners of running jobs, cut off by the
same outage, renew their leases first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import now, parse_composite_key

from core.jobs import SERIALIZER, abandoned_message
from core.lease import Claim, claim_abandoned, has_owner, shut_down, shutdown_key
from core.protocol import JobOutcome, Outcome, Progress, Stage
from core.settings import WorkerSettings
from worker.rq_internals import enqueue_at_front

logger = logging.getLogger(__name__)

ABANDONED = "AbandonedJobError: the job's lease expired (its worker stopped)"


def fence_keep(settings: WorkerSettings) -> int:
    """Seconds a job's fence counter is kept after its last use (it outlives the job)."""
    return int(settings.input_ttl + settings.result_ttl + settings.failure_ttl)


class Recovery:
    """Finds and recovers the abandoned jobs of `queues`."""

    def __init__(
        self, connection: Redis, queues: Sequence[Queue], settings: WorkerSettings
    ) -> None:
        self.connection = connection
        self.queues = list(queues)
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._answering_since: float | None = None
        self._last_answer = float("-inf")

    def start(self) -> None:
        """Run `run_once` every `recovery_interval` seconds in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="recovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (waits for a round in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        interval = self.settings.recovery_interval
        while not self._stop.wait(interval):
            try:
                self.run_once()
            except RedisError as exc:
                self._answering_since = None
                logger.warning("recovery: Redis unavailable: %s", exc)
            except Exception:  # the thread must outlive any one bad job record
                logger.exception("recovery round failed")

    def _redis_settled(self) -> bool:
        """Whether Redis has answered this worker, without a gap, for a whole lease."""
        self.connection.ping()
        moment = time.monotonic()
        gap = moment - self._last_answer
        self._last_answer = moment
        if self._answering_since is None or gap > 2 * self.settings.recovery_interval + 1:
            self._answering_since = moment
        return moment - self._answering_since >= self.settings.lease_ttl

    def run_once(self) -> int:
        """One round; returns how many jobs were requeued or failed."""
        if not self._redis_settled():
            return 0
        recovered = 0
        for queue in self.queues:
            registry = StartedJobRegistry(queue.name, connection=self.connection)
            entries: dict[str, list[str]] = {}
            for raw in self.connection.zrange(registry.key, 0, -1):
                composite = raw.decode() if isinstance(raw, bytes) else str(raw)
                job_id, _ = parse_composite_key(composite)
                entries.setdefault(job_id, []).append(composite)
            for job_id, composites in entries.items():
                if has_owner(self.connection, job_id):
                    continue
                stopped = shut_down(self.connection, job_id)  # read before the claim fences
                claim = claim_abandoned(
                    self.connection, job_id, self.settings.lease_ttl, fence_keep(self.settings)
                )
                if claim is Claim.ALIVE:
                    continue
                if claim is Claim.NOT_RUNNING:  # an entry left behind by a run that has ended
                    self.connection.zrem(registry.key, *composites)
                    continue
                self._requeue_or_fail(queue, registry, job_id, composites, stopped)
                recovered += 1
        return recovered

    def _requeue_or_fail(
        self,
        queue: Queue,
        registry: StartedJobRegistry,
        job_id: str,
        composites: list[str],
        stopped: bool = False,
    ) -> None:
        """`stopped`: its worker was shut down, so the job goes back without spending a retry."""
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=SERIALIZER)
        except NoSuchJobError:
            self.connection.zrem(registry.key, *composites)
            return
        meta = job.meta
        frames = int(meta.get("frames_total", 0) or 0)
        with self.connection.pipeline() as pipe:
            pipe.zrem(registry.key, *composites)
            pipe.delete(shutdown_key(job_id))
            if stopped:
                meta["progress"] = Progress(Stage.QUEUED, 0, frames).as_dict()
                meta.pop("outcome", None)
                job.started_at = None
                enqueue_at_front(queue, job, pipe)  # saves the job, meta included
                logger.warning(
                    "job %s: its worker was shut down before it put the job back; requeued "
                    "at the front, no retry spent",
                    job_id,
                )
            elif job.retries_left:
                meta["progress"] = Progress(Stage.QUEUED, 0, frames).as_dict()
                meta.pop("outcome", None)
                job.started_at = None
                job.retry(queue, pipe)  # saves the job, meta included
                logger.warning(
                    "job %s: its worker stopped (lease expired); requeued, %d retries left",
                    job_id,
                    job.retries_left,
                )
            else:
                meta["outcome"] = JobOutcome(
                    Outcome.FAILED, abandoned_message(self.settings)
                ).as_dict()
                job.ended_at = now()
                job.set_status(JobStatus.FAILED, pipeline=pipe)
                job._handle_failure(ABANDONED, pipe)
                pipe.hset(job.key, "meta", SERIALIZER.dumps(meta))
                logger.warning(
                    "job %s: its worker stopped (lease expired); no retries left", job_id
                )
            pipe.execute()
