"""The reason class of a failed run, for `mcnet_worker_job_failures_total{reason}`.

An operator asks "what fails and why" in a handful of classes, not in exception names:

    input       the sender's files or options (a domain error a user can act on)
    model       the model itself: a checkpoint, or an error raised while it ran (torch
                raises RuntimeError: out of device memory, a kernel that failed)
    storage     the file store refused a read or a write
    redis       Redis was unavailable past the worker's patience
    timeout     the job ran past its time limit
    lost_lease  another worker took the job over (this run's lease lapsed)
    internal    anything else (a bug: the log has the traceback)
"""

from __future__ import annotations

from redis.exceptions import RedisError, WatchError
from rq.timeouts import JobTimeoutException

from core.errors import CheckpointError, MCNetError, StorageUnavailableError
from core.lease import LeaseLostError
from core.storage import StorageError


def failure_reason(exc: BaseException) -> str:
    """The reason class (worker.metrics.FAILURE_REASONS) of the exception that failed a run."""
    if isinstance(exc, LeaseLostError | WatchError):
        return "lost_lease"
    if isinstance(exc, JobTimeoutException):
        return "timeout"
    if isinstance(exc, RedisError):
        return "redis"
    if isinstance(exc, StorageUnavailableError | StorageError | OSError):
        return "storage"
    if isinstance(exc, CheckpointError):
        return "model"
    if isinstance(exc, MCNetError):
        return "input" if exc.status < 500 else "internal"
    if isinstance(exc, RuntimeError):
        return "model"
    return "internal"
