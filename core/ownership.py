"""Which key owns which job, and each owner's jobs newest first. Torch-free.

Per job `mcnet:owner:<id>` holds the owner's name (never the key); per owner and queue
the sorted set `mcnet:owned:<queue>:<owner>` holds its job ids scored by submit time.
Both expire with the jobs (`retention` seconds: inputs kept, the longest result or failure
TTL and the job's time limit); members older than that are pruned on each write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis

from core.storage import check_job_id

OWNER_PREFIX = "mcnet:owner:"
OWNED_PREFIX = "mcnet:owned:"


@dataclass(frozen=True)
class OwnedPage:
    """One page of an owner's job ids, newest first; `cursor` continues after the last."""

    job_ids: list[str]
    cursor: str | None


class JobOwners:
    """Job ownership on one Redis, for one queue."""

    def __init__(self, connection: Redis, queue_name: str, retention: int) -> None:
        self.connection = connection
        self.queue_name = queue_name
        self.retention = retention

    def _owned_key(self, owner: str) -> str:
        return f"{OWNED_PREFIX}{self.queue_name}:{owner}"

    def record(self, job_id: str, owner: str, when: float | None = None) -> None:
        """`owner` made `job_id` (at `when`, default now)."""
        check_job_id(job_id)
        now = time.time() if when is None else when
        owned = self._owned_key(owner)
        with self.connection.pipeline() as pipe:
            pipe.set(OWNER_PREFIX + job_id, owner, ex=self.retention)
            pipe.zadd(owned, {job_id: now})
            pipe.zremrangebyscore(owned, 0, now - self.retention)
            pipe.expire(owned, self.retention)
            pipe.execute()

    def owner_of(self, job_id: str) -> str | None:
        """The name of the job's owner, or None when unknown (expired or malformed id)."""
        try:
            check_job_id(job_id)
        except ValueError:
            return None
        raw = self.connection.get(OWNER_PREFIX + job_id)
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def owns(self, owner: str, job_id: str) -> bool:
        """Whether `owner` made `job_id`."""
        return self.owner_of(job_id) == owner

    def page(self, owner: str, limit: int, cursor: str | None = None) -> OwnedPage:
        """Up to `limit` of the owner's job ids, newest first, older than `cursor` (the
        submit time of the last id of the previous page; ValueError when malformed), so a
        page stays stable while new jobs arrive."""
        high = "+inf" if not cursor else f"({float(cursor)!r}"
        rows: list[tuple[bytes, float]] = self.connection.zrevrangebyscore(  # type: ignore[assignment]
            self._owned_key(owner), high, "-inf", start=0, num=limit, withscores=True
        )
        ids = [member.decode() for member, _ in rows]
        next_cursor = repr(float(rows[-1][1])) if len(rows) == limit else None
        return OwnedPage(ids, next_cursor)

    def job_ids(self, owner: str) -> list[str]:
        """All the owner's job ids Redis still keeps, oldest first."""
        members: list[bytes] = self.connection.zrange(self._owned_key(owner), 0, -1)  # type: ignore[assignment]
        return [member.decode() for member in members]

    def forget(self, owner: str, job_ids: list[str]) -> None:
        """Drop ids of jobs that no longer exist from the owner's set."""
        if job_ids:
            self.connection.zrem(self._owned_key(owner), *job_ids)
