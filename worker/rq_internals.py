"""Every use of RQ's private API, in one place: what the worker needs of RQ that RQ does
not export (checked against rq 3; pyproject pins `rq<4`). Upgrading RQ means reading
these few functions against the new version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.utils import now, utcparse


def set_result(job: Job, value: Any) -> None:
    """Keep the value the job function returned, as RQ's own worker does."""
    job._result = value


def handle_success(job: Job, pipe: Pipeline, result_ttl: int | None, **execution: Any) -> None:
    """RQ's bookkeeping of a finished job (registries, result, status) in `pipe`."""
    job._handle_success(result_ttl, pipeline=pipe, **execution)


def handle_failure(job: Job, pipe: Pipeline, exc_string: str, worker_name: str) -> None:
    """RQ's bookkeeping of a failed job (failed registry, its traceback) in `pipe`."""
    job._handle_failure(exc_string, pipe, worker_name=worker_name)


def enqueue_at_front(queue: Queue, job: Job, pipe: Pipeline) -> None:
    """Put `job` back at the front of `queue`, in `pipe`."""
    queue._enqueue_job(job, pipeline=pipe, at_front=True)


def stop_requested(worker: SimpleWorker) -> bool:
    """Whether the worker was asked to stop (a signal)."""
    return bool(worker._stop_requested)


def ask_to_stop(worker: SimpleWorker) -> None:
    """Set the flag RQ's work loop reads between jobs. MCNetWorker's `_shutdown` (RQ's
    handler of the first SIGTERM, overridden) does only this: RQ's own raises
    StopRequested into whatever runs when the worker is not busy."""
    worker._stop_requested = True


def utc_now() -> datetime:
    """RQ's clock (naive UTC), for its job and worker timestamps."""
    return now()


def parse_utc(text: str) -> datetime:
    """A timestamp as RQ writes it (ValueError when it is not one)."""
    return utcparse(text)
