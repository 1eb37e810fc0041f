"""The job lease against a real redis-server: one owner, fenced writes, recovery only
after expiry, a lapse nobody used taken back, an ended job never taken."""

from __future__ import annotations

import time
import uuid

import pytest
from redis import Redis
from redis.exceptions import WatchError
from rq.job import Job

from core.lease import (
    Claim,
    Lease,
    LeaseLostError,
    Refusal,
    claim_abandoned,
    has_owner,
    mark_shutdown,
    shut_down,
)
from service.local import EmbeddedRedis


@pytest.fixture
def redis(redis_server: EmbeddedRedis) -> Redis:
    return Redis.from_url(redis_server.url)


def _job(redis: Redis, status: str = "queued") -> str:
    job_id = str(uuid.uuid4())
    redis.hset(Job.key_for(job_id), "status", status)
    return job_id


def test_one_owner_and_fenced_writes(redis: Redis) -> None:
    job_id = _job(redis)
    first = Lease.acquire(redis, job_id, ttl=5, keep=60)
    assert isinstance(first, Lease)
    assert Lease.acquire(redis, job_id, ttl=5, keep=60) is Refusal.HELD
    redis.hset(Job.key_for(job_id), "status", "started")
    assert claim_abandoned(redis, job_id, hold=5, keep=60) is Claim.ALIVE
    assert first.renew() and first.hset("meta", b"x")
    with redis.pipeline() as pipe:
        first.guard(pipe)
        pipe.multi()
        pipe.hset(Job.key_for(job_id), "status", "finished")
        first.release(pipe)
        pipe.execute()
    assert not has_owner(redis, job_id)
    assert Lease.acquire(redis, job_id, ttl=5, keep=60) is Refusal.ENDED  # never again
    assert claim_abandoned(redis, job_id, hold=5, keep=60) is Claim.NOT_RUNNING


def test_recovery_after_expiry_fences_the_old_run_off(redis: Redis) -> None:
    job_id = _job(redis)
    old = Lease.acquire(redis, job_id, ttl=0.3, keep=60)
    assert isinstance(old, Lease)
    redis.hset(Job.key_for(job_id), "status", "started")
    time.sleep(0.5)
    assert not has_owner(redis, job_id)
    assert claim_abandoned(redis, job_id, hold=5, keep=60) is Claim.CLAIMED
    assert claim_abandoned(redis, job_id, hold=5, keep=60) is Claim.ALIVE  # one claimer
    redis.hset(Job.key_for(job_id), "status", "queued")  # requeued by the claimer
    new = Lease.acquire(redis, job_id, ttl=5, keep=60)  # takes over the claim
    assert isinstance(new, Lease) and new.fence > old.fence
    assert not old.renew() and not old.hset("meta", b"stale")
    with redis.pipeline() as pipe, pytest.raises(LeaseLostError):
        old.guard(pipe)
    assert new.renew()


def test_a_lapse_nobody_used_is_taken_back(redis: Redis) -> None:
    job_id = _job(redis)
    lease = Lease.acquire(redis, job_id, ttl=0.3, keep=60)
    assert isinstance(lease, Lease)
    time.sleep(0.5)
    assert not has_owner(redis, job_id)
    assert lease.renew() and has_owner(redis, job_id)


def test_a_takeover_between_guard_and_exec_aborts_the_write(redis: Redis) -> None:
    job_id = _job(redis)
    lease = Lease.acquire(redis, job_id, ttl=5, keep=60)
    assert isinstance(lease, Lease)
    with redis.pipeline() as pipe:
        lease.guard(pipe)
        redis.incr(f"mcnet:fence:{job_id}")  # a recovery, from another connection
        pipe.multi()
        pipe.hset(Job.key_for(job_id), "status", "finished")
        with pytest.raises(WatchError):
            pipe.execute()
    assert redis.hget(Job.key_for(job_id), "status") == b"queued"


def test_a_shutdown_mark_counts_for_the_run_that_made_it_only(redis: Redis) -> None:
    """Recovery spends no retry for a run stopped by a shutdown; a later run that dies is
    not excused by an earlier run's mark."""
    job_id = _job(redis)
    first = Lease.acquire(redis, job_id, ttl=0.3, keep=60)
    assert isinstance(first, Lease)
    assert not shut_down(redis, job_id)
    mark_shutdown(redis, job_id, first.fence, keep=60)
    assert shut_down(redis, job_id)
    redis.hset(Job.key_for(job_id), "status", "started")
    time.sleep(0.5)  # the lease lapses
    assert claim_abandoned(redis, job_id, hold=0.3, keep=60) is Claim.CLAIMED  # fences it off
    assert not shut_down(redis, job_id)  # read before the claim, as recovery does
    time.sleep(0.5)
    redis.hset(Job.key_for(job_id), "status", "queued")
    second = Lease.acquire(redis, job_id, ttl=5, keep=60)
    assert isinstance(second, Lease) and not shut_down(redis, job_id)
