"""Who owns a running job: a lease with a fencing token in Redis. Torch-free.

At most one render owns a job. Two keys per job:

    mcnet:fence:<id>   a counter: every start of a run, and every recovery, increments it
    mcnet:lease:<id>   the fence value of the run that owns the job, with a TTL

A worker takes the lease when it starts a job (`acquire`: refused while another run holds
it, or when the job has already ended), renews it with its heartbeat (`renew`), and proves
it in the same Redis transaction as every write it makes to the job (progress, outcome,
finished). A run whose fence value is no longer the job's current one has lost the job:
it stops between batches and writes nothing. A lapsed lease that nobody took over is
taken back by its run's next renewal, so a Redis outage or a paused worker ends with one
render, whichever run it is.

Recovery (`claim_abandoned`) happens only once the lease has expired: it increments the
fence (fencing off the old run) and marks the lease `recovering` until the job is back
in the queue, where the next worker's `acquire` takes it over. A job that has already
ended is never claimed and never started again.

A run whose worker was asked to shut down (SIGTERM: an autoscaler removing it) marks the
job `mcnet:shutdown:<id>` with its fence value (`mark_shutdown`). If the worker is killed
before it could put the job back itself (SIGKILL after a grace period shorter than the
rest of the job), recovery finds the mark of the run it fences off (`shut_down`) and
puts the job back without spending one of its retries: the job did nothing wrong.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq.job import Job

LEASE_PREFIX = "mcnet:lease:"
FENCE_PREFIX = "mcnet:fence:"
SHUTDOWN_PREFIX = "mcnet:shutdown:"
RECOVERING = "recovering"
ENDED_STATES = ("finished", "failed", "canceled", "stopped")

# KEYS: lease, fence, job hash. ARGV: lease ms, seconds the fence counter is kept.
# Returns the run's fence value; 0 when another run holds the lease; -1 when the job ended.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[3] then return 0 end
local status = redis.call('HGET', KEYS[3], 'status')
if status == 'finished' or status == 'failed' or status == 'canceled' or status == 'stopped'
  then return -1 end
local fence = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
return fence
"""

# KEYS: lease, fence. ARGV: the run's fence value, lease ms. 1: renewed (or taken back
# after a lapse nobody used); 0: another run or a recovery has the job.
_RENEW = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: fence, job hash. ARGV: the run's fence value, field, value. 1: written; 0: lost.
_FENCED_HSET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS: lease, fence, job hash. ARGV: ms the claim holds, seconds the fence is kept.
# 1: claimed (the old run is fenced off); 0: its owner is alive; -1: the job is not running.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('HGET', KEYS[3], 'status') ~= 'started' then return -1 end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
return 1
"""


def lease_key(job_id: str) -> str:
    """Redis key of a job's lease."""
    return LEASE_PREFIX + job_id


def fence_key(job_id: str) -> str:
    """Redis key of a job's fencing counter."""
    return FENCE_PREFIX + job_id


def shutdown_key(job_id: str) -> str:
    """Redis key of a job's shutdown mark: the fence value of the run told to stop."""
    return SHUTDOWN_PREFIX + job_id


def _job_key(job_id: str) -> str:
    return str(Job.key_for(job_id))


class Refusal(enum.Enum):
    """Why `Lease.acquire` gave no lease (the values are its Redis script's answers)."""

    HELD = 0  # another run holds the lease
    ENDED = -1  # the job has already ended: it never runs again


class Claim(enum.Enum):
    """What `claim_abandoned` did (the values are its Redis script's answers)."""

    CLAIMED = 1  # the job is the caller's to requeue or fail; its old run is fenced off
    ALIVE = 0  # its run still holds the lease
    NOT_RUNNING = -1  # the job is not running (an entry left behind by a run that ended)


class LeaseLostError(Exception):
    """Another run owns the job now (this one lapsed and the job was recovered)."""


@dataclass(frozen=True)
class Lease:
    """The lease of one run of a job: its fence value and how long each renewal lasts."""

    connection: Redis
    job_id: str
    fence: int
    ttl: float

    @classmethod
    def acquire(cls, connection: Redis, job_id: str, ttl: float, keep: int) -> Lease | Refusal:
        """Take the job for a new run; the Lease, or why not (another run holds it, or the
        job has already ended). `keep`: seconds the fence counter outlives its last use."""
        value = int(
            connection.eval(
                _ACQUIRE,
                3,
                lease_key(job_id),
                fence_key(job_id),
                _job_key(job_id),
                int(ttl * 1000),
                int(keep),
                RECOVERING,
            )
        )
        return cls(connection, job_id, value, ttl) if value > 0 else Refusal(value)

    def renew(self) -> bool:
        """Extend the lease; False when the job belongs to another run now."""
        answer = self.connection.eval(
            _RENEW,
            2,
            lease_key(self.job_id),
            fence_key(self.job_id),
            self.fence,
            int(self.ttl * 1000),
        )
        return bool(int(answer))

    def hset(self, field: str, value: bytes | str) -> bool:
        """Write one field of the job's hash if this run still owns it."""
        answer = self.connection.eval(
            _FENCED_HSET, 2, fence_key(self.job_id), _job_key(self.job_id), self.fence, field, value
        )
        return bool(int(answer))

    def guard(self, pipe: Pipeline) -> None:
        """In a transaction (before MULTI): watch the fence and check this run owns the job;
        EXEC then fails if anyone takes the job over in between. Raises LeaseLostError."""
        pipe.watch(fence_key(self.job_id))
        current = pipe.get(fence_key(self.job_id))
        if current is None or int(current) != self.fence:
            pipe.reset()
            raise LeaseLostError(f"job {self.job_id} belongs to another run")

    def release(self, pipe: Pipeline | Redis) -> None:
        """Delete the lease (inside the transaction that records the job's outcome)."""
        pipe.delete(lease_key(self.job_id))


def claim_abandoned(connection: Redis, job_id: str, hold: float, keep: int) -> Claim:
    """Claim a running job whose lease has expired, to requeue or fail it.

    The claim marks the lease `recovering` for `hold` seconds; the next run takes it over.
    """
    answer: Any = connection.eval(
        _CLAIM,
        3,
        lease_key(job_id),
        fence_key(job_id),
        _job_key(job_id),
        int(hold * 1000),
        int(keep),
        RECOVERING,
    )
    return Claim(int(answer))


def has_owner(connection: Redis, job_id: str) -> bool:
    """Whether a run (or a recovery) holds the job's lease (a read)."""
    return bool(connection.exists(lease_key(job_id)))


def mark_shutdown(connection: Redis, job_id: str, fence: int, keep: int) -> None:
    """Record that the run `fence` of the job was told to shut down (its worker got
    SIGTERM); kept `keep` seconds, as long as the job can wait for a worker."""
    connection.set(shutdown_key(job_id), fence, ex=int(keep))


def shut_down(connection: Redis, job_id: str) -> bool:
    """Whether the job's current run was told to shut down (read before a claim fences
    it off): its worker stopped because it was removed, not because of the job."""
    mark, fence = connection.mget(shutdown_key(job_id), fence_key(job_id))
    return mark is not None and fence is not None and int(mark) == int(fence)
