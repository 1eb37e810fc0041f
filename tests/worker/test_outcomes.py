"""What the exception that ended a run means, case by case (no Redis, no RQ worker)."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from core.errors import JobCanceledError, NoFaceError
from core.lease import LeaseLostError
from core.protocol import JobOutcome, Outcome, time_limit_message
from worker.outcomes import Verdict, job_outcome, verdict_of
from worker.rq_task import ShutdownRequeueError


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (LeaseLostError("taken over"), Verdict.LOST),
        (RedisConnectionError("down"), Verdict.UNRECORDED),
        (ShutdownRequeueError(), Verdict.REQUEUE),
        (SystemExit(1), Verdict.REQUEUE),
        (KeyboardInterrupt(), Verdict.REQUEUE),
        (JobCanceledError("canceled"), Verdict.CANCEL),
        (NoFaceError("source"), Verdict.REJECT),
        (JobTimeoutException("late"), Verdict.TIME_OUT),
        (AbandonedJobError("worker died"), Verdict.CRASH),
        (RuntimeError("a bug"), Verdict.CRASH),
    ],
)
def test_each_exception_has_its_verdict(exc: BaseException, verdict: Verdict) -> None:
    assert verdict_of(exc) is verdict


def test_a_cancel_is_a_cancel_although_it_is_a_domain_error() -> None:
    assert verdict_of(JobCanceledError("stop")) is Verdict.CANCEL


def test_recorded_verdicts_store_their_outcome() -> None:
    no_face = NoFaceError("source")
    assert job_outcome(Verdict.REJECT, no_face, 60) == JobOutcome(Outcome.FAILED, str(no_face))
    late = job_outcome(Verdict.TIME_OUT, JobTimeoutException("late"), 90)
    assert late == JobOutcome(Outcome.FAILED, time_limit_message(90))
    crash = job_outcome(Verdict.CRASH, RuntimeError("internal detail"), 60)
    assert crash == JobOutcome(Outcome.FAILED, None, retry=True)
    assert job_outcome(Verdict.REQUEUE, SystemExit(), 60) == JobOutcome(Outcome.REQUEUED)
    assert job_outcome(Verdict.CANCEL, JobCanceledError("x"), 60) == JobOutcome(Outcome.CANCELED)


@pytest.mark.parametrize("verdict", [Verdict.LOST, Verdict.UNRECORDED])
def test_runs_that_record_nothing_have_no_outcome(verdict: Verdict) -> None:
    with pytest.raises(ValueError, match="records no outcome"):
        job_outcome(verdict, RuntimeError(), 60)
