"""Live progress for Server-Sent Events: one shared poller per API process.

Every open `GET /jobs/{id}/events` stream subscribes to a job. One background task
(started with the first subscriber, stopped with the last) reads all watched jobs per
tick in one Redis round trip (plus one read of the queue's order while any of them
waits) and hands each subscriber the latest snapshot, so N streams cost Redis one read
per tick, not N.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from core.job_view import JobView
from core.jobs import JobQueue
from service.metrics import ApiMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """A job as one tick read it; `info` None: the job no longer exists."""

    info: JobView | None


class JobWatcher:
    """Watches jobs for their event streams; one per app."""

    def __init__(self, jobs: JobQueue, metrics: ApiMetrics, interval: float = 0.5) -> None:
        self.jobs = jobs
        self.metrics = metrics
        self.interval = interval
        self._subscribers: dict[str, set[asyncio.Queue[Snapshot]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def watch(self, job_id: str, idle: float) -> AsyncIterator[Snapshot | None]:
        """Snapshots of the job, each tick's, until it ends or disappears; None after
        `idle` seconds without one (a stream's keep-alive)."""
        inbox: asyncio.Queue[Snapshot] = asyncio.Queue(maxsize=1)
        self._subscribers.setdefault(job_id, set()).add(inbox)
        self.metrics.event_streams.inc()
        self._ensure_poller()
        try:
            while True:
                try:
                    snapshot = await asyncio.wait_for(inbox.get(), idle)
                except TimeoutError:
                    self._ensure_poller()  # should it have died, start it again
                    yield None
                    continue
                yield snapshot
                if snapshot.info is None or snapshot.info.ended:
                    return
        finally:
            self.metrics.event_streams.dec()
            queues = self._subscribers.get(job_id)
            if queues is not None:
                queues.discard(inbox)
                if not queues:
                    del self._subscribers[job_id]

    def _ensure_poller(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while self._subscribers:
            watched = list(self._subscribers)
            try:
                snapshots = await run_in_threadpool(self._read, watched)
            except RedisError as exc:
                logger.warning("progress events: Redis unavailable (%s); retrying", exc)
                snapshots = {}
            self.metrics.event_reads.inc()
            for job_id, snapshot in snapshots.items():
                for inbox in list(self._subscribers.get(job_id, ())):
                    with contextlib.suppress(asyncio.QueueEmpty):
                        if inbox.full():
                            inbox.get_nowait()  # only the latest snapshot matters
                    inbox.put_nowait(snapshot)
            await asyncio.sleep(self.interval)

    def _read(self, job_ids: list[str]) -> dict[str, Snapshot]:
        infos = self.jobs.infos(job_ids)
        return {job_id: Snapshot(infos.get(job_id)) for job_id in job_ids}
