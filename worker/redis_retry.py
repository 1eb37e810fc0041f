"""Redis calls of the job path, retried with backoff for a bounded time.

A worker outlives a Redis outage: each call that records a job's progress or outcome is
tried again (0.5 s, 1 s, 2 s, ... up to 10 s apart) until `patience` seconds have passed,
then the last error is raised and the job is left to the lease-based recovery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT = (RedisConnectionError, RedisTimeoutError)
_FIRST_WAIT_S = 0.5
_MAX_WAIT_S = 10.0


def retrying(call: Callable[[], T], what: str, patience: float) -> T:
    """`call()`, tried again on a lost Redis connection until `patience` seconds passed."""
    deadline = time.monotonic() + patience
    wait = _FIRST_WAIT_S
    attempt = 1
    while True:
        try:
            return call()
        except TRANSIENT as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                logger.error("%s: Redis unavailable for %.0f s, giving up: %s", what, patience, exc)
                raise
            logger.warning("%s: Redis unavailable (attempt %d): %s", what, attempt, exc)
            time.sleep(min(wait, left))
            wait = min(wait * 2, _MAX_WAIT_S)
            attempt += 1
