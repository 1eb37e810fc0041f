"""The reason class of a failed run (mcnet_worker_job_failures_total{reason})."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import WatchError
from rq.timeouts import JobTimeoutException

from core.errors import (
    CheckpointError,
    InvalidInputError,
    NoFaceError,
    StorageUnavailableError,
)
from core.lease import LeaseLostError
from core.storage import StorageError
from worker.failures import failure_reason
from worker.metrics import FAILURE_REASONS


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (InvalidInputError("the uploaded files are gone"), "input"),
        (NoFaceError("photo"), "input"),
        (CheckpointError("damaged"), "model"),
        (RuntimeError("CUDA out of memory"), "model"),
        (StorageUnavailableError("store the result"), "storage"),
        (StorageError("read-only"), "storage"),
        (OSError(28, "No space left on device"), "storage"),
        (RedisConnectionError("refused"), "redis"),
        (JobTimeoutException("past its limit"), "timeout"),
        (LeaseLostError("taken over"), "lost_lease"),
        (WatchError("changed"), "lost_lease"),
        (KeyError("a bug"), "internal"),
    ],
)
def test_each_failure_has_its_class(exc: BaseException, reason: str) -> None:
    assert failure_reason(exc) == reason
    assert reason in FAILURE_REASONS
