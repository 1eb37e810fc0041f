"""Estimated times in the job JSON and the submit answer's warning of a long job."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import Stack
from tests.service.helpers import WorkerProcess, make_inputs, submit, wait_for, wait_status


def _measured(stack: Stack, client: httpx.Client, inputs: tuple[Path, Path]) -> None:
    """Run one job through the stack's worker, which measured its speed as it started."""
    wait_for(lambda: stack.jobs().workload().speeds, 10, "the speed the worker measured at start")
    first = submit(client, *inputs).json()
    assert first["estimated_seconds"] is not None and first["estimated_seconds"] > 0
    assert first["warnings"] == []
    done = wait_status(client, first["id"], timeout=60)
    assert done["status"] == "finished" and done["estimated_seconds"] is None


@contextlib.contextmanager
def _paused(
    worker: WorkerProcess, client: httpx.Client, inputs: tuple[Path, Path]
) -> Iterator[None]:
    """The worker stopped: alive (its heartbeat is recent) but taking no job. A job sent
    first may be handed to its pending dequeue; the jobs after it stay in the queue."""
    worker.signal(signal.SIGSTOP)
    try:
        submit(client, *inputs)
        yield
    finally:
        worker.signal(signal.SIGCONT)


def test_jobs_are_estimated_from_the_measured_speed_and_the_jobs_ahead(
    stack: Stack, tmp_path: Path
) -> None:
    worker = stack.start_worker()
    short = make_inputs(tmp_path, frames=3)
    longer = make_inputs(tmp_path, frames=7, seed=1)
    with stack.api(long_job_warning=0) as client:
        _measured(stack, client, short)
        with _paused(worker, client, short):
            ids = [submit(client, *inputs).json()["id"] for inputs in (longer, short)]
            speed = stack.jobs().workload().frames_per_second
            bodies = [client.get(f"/jobs/{job_id}").json() for job_id in ids]
        assert speed is not None and speed > 0
        first, second = bodies
        assert first["status"] == second["status"] == "queued"
        assert second["queue_position"] == first["queue_position"] + 1
        assert first["estimated_seconds"] >= 7 / speed - 1e-6  # its own frames at least
        # the second waits for the first, then its own 3 frames
        assert second["estimated_seconds"] - first["estimated_seconds"] == pytest.approx(3 / speed)
        for job_id in ids:
            assert wait_status(client, job_id, timeout=60)["status"] == "finished"


def test_a_job_over_the_threshold_is_accepted_with_a_warning(stack: Stack, tmp_path: Path) -> None:
    worker = stack.start_worker()
    inputs = make_inputs(tmp_path, frames=3)
    with stack.api() as client:
        _measured(stack, client, inputs)
    with stack.api(long_job_warning=1e-6) as warned, stack.api() as default:
        with _paused(worker, warned, inputs):
            long = submit(warned, *inputs)
            short = submit(default, *inputs)  # the default threshold: 600 s
        assert long.status_code == short.status_code == 202, long.text + short.text
        body = long.json()
        assert body["estimated_seconds"] is not None and body["estimated_seconds"] > 0
        assert len(body["warnings"]) == 1 and "should take about" in body["warnings"][0]
        assert short.json()["warnings"] == [] and short.json()["estimated_seconds"] > 0
        for job in (long, short):
            wait_status(warned, job.json()["id"], timeout=60)
