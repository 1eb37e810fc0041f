"""Faults: a worker killed mid-job, Redis restarted with jobs in the queue."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import httpx

from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_for, wait_status


def _wait_animating(client: httpx.Client, job_id: str) -> None:
    def animating() -> bool:
        body = client.get(f"/jobs/{job_id}").json()
        return body["status"] == "started" and body["progress"]["stage"] == "animating"

    wait_for(animating, 60, "the job to be animating")


def test_worker_killed_mid_job_is_retried_by_another_worker(stack: Stack, tmp_path: Path) -> None:
    doomed = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=12)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        _wait_animating(client, job_id)
        doomed.kill()
        rescuer = stack.start_worker(wait=False)
        final = wait_status(client, job_id, timeout=120)
        assert final["status"] == "finished", final
        assert client.get(f"/jobs/{job_id}/result").status_code == 200
        assert "frames_animated_total 12.0" in rescuer.metrics()


def test_worker_killed_without_retries_left_fails_with_a_reason(
    stack: Stack, tmp_path: Path
) -> None:
    doomed = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=12)
    with stack.api(job_retries=0) as client:
        job_id = submit(client, source, driving).json()["id"]
        _wait_animating(client, job_id)
        doomed.kill()
        final = wait_status(client, job_id, timeout=60)
        assert final["status"] == "failed", final
        assert "worker" in final["error"] and "stopped" in final["error"]
        assert client.get(f"/jobs/{job_id}/result").status_code == 409


def test_queued_jobs_survive_a_redis_restart(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        ids = [submit(client, source, driving, seed=str(i)).json()["id"] for i in range(3)]
        stack.redis_server.stop()
        stack.redis_server.start()
        for job_id in ids:
            body = wait_for(partial(_status_after_restart, client, job_id), 20, "the API")
            assert body["status"] == "queued"
            assert body["options"]["seed"] == ids.index(job_id)
        stack.start_worker()
        for job_id in ids:
            assert wait_status(client, job_id, timeout=90)["status"] == "finished"


def _status_after_restart(client: httpx.Client, job_id: str) -> dict[str, object] | None:
    answer = client.get(f"/jobs/{job_id}")
    if answer.status_code == 503:
        return None  # the API's connection is being re-established
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body
