"""What a run of a job that raised means: `verdict_of(exc)` (a pure function, one enum
value per case) and the outcome stored in the job for each verdict (`job_outcome`)."""

from __future__ import annotations

import enum

from redis.exceptions import RedisError
from rq.timeouts import JobTimeoutException

from core.errors import JobCanceledError, MCNetError
from core.lease import LeaseLostError
from core.protocol import JobOutcome, Outcome, time_limit_message
from worker.rq_task import ShutdownRequeueError


class Verdict(enum.Enum):
    """The meaning of the exception that ended a run."""

    LOST = "lost"  # another worker owns the job now: record nothing
    UNRECORDED = "unrecorded"  # Redis unavailable: record nothing, recovery runs it again
    REQUEUE = "requeue"  # the worker shuts down: back to the front of the queue
    CANCEL = "cancel"  # the user canceled it
    REJECT = "reject"  # a domain error (bad input): failed at once, with its reason
    TIME_OUT = "time_out"  # past its time limit: failed at once, with the limit
    CRASH = "crash"  # anything else: failed, run again while retries are left


def verdict_of(exc: BaseException) -> Verdict:
    """What the exception that ended a run means (RQ's AbandonedJobError, a worker that
    died, is a crash like any other: the job runs again while retries are left)."""
    if isinstance(exc, LeaseLostError):
        return Verdict.LOST
    if isinstance(exc, RedisError):
        return Verdict.UNRECORDED
    if isinstance(exc, ShutdownRequeueError | SystemExit | KeyboardInterrupt):
        return Verdict.REQUEUE
    if isinstance(exc, JobCanceledError):
        return Verdict.CANCEL
    if isinstance(exc, MCNetError):
        return Verdict.REJECT
    if isinstance(exc, JobTimeoutException):
        return Verdict.TIME_OUT
    return Verdict.CRASH


def job_outcome(verdict: Verdict, exc: BaseException, timeout: float | None) -> JobOutcome:
    """The outcome a recorded verdict stores in the job; `timeout` is the job's limit."""
    if verdict is Verdict.REQUEUE:
        return JobOutcome(Outcome.REQUEUED)
    if verdict is Verdict.CANCEL:
        return JobOutcome(Outcome.CANCELED)
    if verdict is Verdict.REJECT:
        return JobOutcome(Outcome.FAILED, str(exc))
    if verdict is Verdict.TIME_OUT:
        return JobOutcome(Outcome.FAILED, time_limit_message(timeout))
    if verdict is Verdict.CRASH:
        return JobOutcome(Outcome.FAILED, retry=True)
    raise ValueError(f"a run that is {verdict.value} records no outcome")
