"""The job time limit counted by work (worker.work_timer), and the start-up messages'
redaction (worker.startup)."""

from __future__ import annotations

import time

import pytest
from rq.timeouts import JobTimeoutException

from worker import work_timer
from worker.startup import redacted
from worker.work_timer import WorkTimeLimit


def test_a_job_past_its_limit_is_stopped_in_the_main_thread() -> None:
    limit = WorkTimeLimit(1, JobTimeoutException)
    deadline = time.monotonic() + 30
    with pytest.raises(JobTimeoutException, match="1 seconds of work"), limit:
        while time.monotonic() < deadline:
            time.sleep(0.05)
    assert limit.worked >= 1


def test_a_gap_longer_than_a_pause_counts_as_one_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen process sees its clock jump: the jump is left out of the work."""
    clock = [1000.0]
    monkeypatch.setattr(work_timer.time, "monotonic", lambda: clock[0])
    limit = WorkTimeLimit(3, JobTimeoutException)
    real_wait = limit._stop.wait

    def wait(seconds: float) -> bool:
        clock[0] += 60.0 if limit.paused == 0 and limit.worked >= 1 else seconds
        return real_wait(0.01)

    monkeypatch.setattr(limit._stop, "wait", wait)
    with pytest.raises(JobTimeoutException), limit:
        deadline = time.perf_counter() + 30
        while time.perf_counter() < deadline:
            time.sleep(0.01)
    assert limit.paused == pytest.approx(60.0 - work_timer.TICK_S)
    assert limit.worked == pytest.approx(3.0, abs=work_timer.TICK_S)


def test_redacted_hides_the_password_only() -> None:
    assert redacted("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redacted("redis://user:s3cret@host/1") == "redis://user:***@host/1"
    assert redacted("redis://redis:6379/0") == "redis://redis:6379/0"
