"""At start, after the model is loaded: wait for Redis and the store, not die without them.

A worker that cannot reach Redis (down, wrong password, protected mode) or write to its
store (S3 unreachable, a folder not mounted yet) logs one line naming the setting to
check, then tries again with backoff, keeping the model it loaded. A container's restart
loop is not the retry mechanism: it would load the model again each time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from redis import Redis
from redis.exceptions import RedisError

from core.settings import WorkerSettings
from core.storage import Storage, StorageError

logger = logging.getLogger(__name__)

FIRST_WAIT_S = 1.0
LONGEST_WAIT_S = 30.0


def redacted(url: str) -> str:
    """`url` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def redis_problem(connection: Redis, settings: WorkerSettings) -> str | None:
    """None when Redis answers; else one line naming REDIS_URL and why."""
    try:
        connection.ping()
    except RedisError as exc:
        url = redacted(settings.redis_url or "")
        return (
            f"Redis cannot be used: check REDIS_URL={url} ({type(exc).__name__}: {_one_line(exc)})"
        )
    return None


def storage_problem(storage: Storage, settings: WorkerSettings) -> str | None:
    """None when the store takes writes; else one line naming STORAGE_URL and why."""
    try:
        storage.check()
    except (StorageError, OSError) as exc:
        where = f"STORAGE_URL={settings.storage_url}"
        if settings.s3_endpoint_url:
            where += f", MCNET_S3_ENDPOINT_URL={settings.s3_endpoint_url}"
        return f"the store cannot be written: check {where} ({_one_line(exc)})"
    return None


def wait_for_services(
    connection: Redis,
    storage: Storage,
    settings: WorkerSettings,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once Redis answers and the store takes writes, trying with backoff."""
    wait = FIRST_WAIT_S
    while True:
        problem = redis_problem(connection, settings) or storage_problem(storage, settings)
        if problem is None:
            return
        logger.error("%s; trying again in %.0f s", problem, wait)
        sleep(wait)
        wait = min(wait * 2, LONGEST_WAIT_S)
