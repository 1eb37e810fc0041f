"""The job protocol as the API reads it: states, progress, time limits."""

from __future__ import annotations

from core.jobs import progress_of, state_of
from core.protocol import JobState, job_timeout


def test_states_and_progress() -> None:
    assert state_of("queued", {}) is JobState.QUEUED
    assert state_of("deferred", {}) is JobState.QUEUED
    assert state_of("scheduled", {}) is JobState.QUEUED
    assert state_of("started", {}) is JobState.STARTED
    assert state_of("finished", {}) is JobState.FINISHED
    assert state_of("failed", {}) is JobState.FAILED
    assert state_of("stopped", {}) is JobState.FAILED
    assert state_of("canceled", {}) is JobState.CANCELED
    assert state_of("failed", {"outcome": {"outcome": "canceled"}}) is JobState.CANCELED
    meta = {"frames_total": 9, "progress": {"stage": "animating", "frames_done": 4}}
    assert progress_of(meta, JobState.STARTED).as_dict() == {
        "stage": "animating",
        "frames_done": 4,
        "frames_total": 9,
    }
    assert progress_of(meta, JobState.FINISHED).frames_done == 9
    assert progress_of(meta, JobState.QUEUED).stage == "queued"


def test_job_timeout_grows_with_frames() -> None:
    assert job_timeout(0, 120, 2) == 120
    assert job_timeout(1000, 120, 2) == 2120
    assert job_timeout(3, 1.5, 0.1) == 2
