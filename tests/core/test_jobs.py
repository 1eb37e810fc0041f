"""The job protocol as the API reads it: states, progress, time limits."""

from __future__ import annotations

import time
import uuid

from redis import Redis

from core.jobs import JobQueue, progress_of, state_of
from core.media_probe import VideoInfo
from core.options import JobOptions
from core.protocol import JobState, job_timeout
from core.settings import QueueSettings
from tests.conftest import EmbeddedRedis


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


def test_cancel_of_a_job_taken_meanwhile_leaves_it_to_its_worker(
    redis_server: EmbeddedRedis,
) -> None:
    """A job read as queued that a worker took before RQ's cancel ran (RQ then looks for
    that run's execution, which may already be gone): not dequeued, no error; the cancel
    flag, set first, stops the run."""
    connection = Redis.from_url(redis_server.url)
    settings = QueueSettings(redis_url=redis_server.url, queue_name=f"q-{uuid.uuid4().hex[:8]}")
    jobs = JobQueue(connection, settings)
    job_id = str(uuid.uuid4())
    jobs.submit(job_id, JobOptions(), VideoInfo(64, 64, 3, 25.0, 0.12, False))
    job = jobs.fetch(job_id)
    assert job is not None
    connection.hset(job.key, "status", "started")  # taken by a worker meanwhile ...
    connection.zadd(job.execution_registry.key, {"gone": time.time() + 600})  # ... ended
    assert JobQueue._dequeue(job) is False
    taken = jobs.fetch(job_id)
    assert taken is not None and taken.get_status() == "started"
