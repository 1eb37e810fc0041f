"""Faults that stall a job: a worker paused past its lease, Redis paused or killed mid-job,
a worker killed while nobody polls, a worker restarted under its name after kill -9.

Every job must end with exactly one recorded render (the worker's log line "rendered and
recorded finished"), the right final state, and its result reachable.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
from rq.job import Job

from core.jobs import SERIALIZER
from tests.service.conftest import Stack
from tests.service.helpers import (
    WorkerProcess,
    make_inputs,
    submit,
    wait_for,
    wait_status,
    worker_env,
)

FRAMES = 40  # long enough to be mid-render when the fault comes


def renders(stack: Stack, job_id: str) -> int:
    """Recorded renders of `job_id` over every worker of the stack."""
    line = f"job {job_id}: rendered and recorded finished"
    return sum(worker.log_text().count(line) for worker in stack.workers)


def runs(worker: WorkerProcess, job_id: str) -> int:
    """Times `worker` started `job_id` (RQ logs the job's description when it takes it)."""
    return worker.log_text().count(f"animate {job_id} (")


def redis_field(stack: Stack, job_id: str, field: str) -> str:
    value = stack.redis.hget(Job.key_for(job_id), field)
    return value.decode() if isinstance(value, bytes) else ""


def wait_animating(stack: Stack, job_id: str, worker: str | None = None) -> None:
    """Wait (reading Redis, not the API) until the job animates, on `worker` if given."""

    def animating() -> bool:
        if worker is not None and redis_field(stack, job_id, "worker_name") != worker:
            return False
        job = Job.fetch(job_id, connection=stack.redis, serializer=SERIALIZER)
        progress = (job.meta or {}).get("progress") or {}
        return job.get_status() == "started" and progress.get("stage") == "animating"

    wait_for(animating, 90, f"job {job_id} to be animating", 0.1)


def finish(client: httpx.Client, stack: Stack, job_id: str) -> dict[str, object]:
    final = wait_status(client, job_id, timeout=180)
    assert final["status"] == "finished", final
    result = client.get(f"/jobs/{job_id}/result")
    assert result.status_code == 200 and result.content[4:8] == b"ftyp"
    # The worker writes its log line just after it records the job finished.
    wait_for(lambda: renders(stack, job_id) > 0, 30, "the worker's render log line", 0.2)
    assert renders(stack, job_id) == 1
    return final


def test_worker_paused_past_its_lease_renders_once(stack: Stack, tmp_path: Path) -> None:
    paused = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_animating(stack, job_id, paused.name)
        paused.signal(signal.SIGSTOP)
        try:
            rescuer = stack.start_worker(wait=False)
            wait_animating(stack, job_id, rescuer.name)  # taken over once the lease lapsed
        finally:
            paused.signal(signal.SIGCONT)
        finish(client, stack, job_id)
        wait_for(lambda: "this run" in paused.log_text(), 60, "the paused worker to give up", 0.2)
        assert paused.alive() and rescuer.alive()
        assert "rendered and recorded" not in paused.log_text()


def test_redis_paused_mid_job_past_the_lease(stack: Stack, tmp_path: Path) -> None:
    owner = stack.start_worker()
    idle = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_animating(stack, job_id)
        process = stack.redis_server.process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(8)  # twice the lease
        finally:
            process.send_signal(signal.SIGCONT)
        finish(client, stack, job_id)
        assert owner.alive() and idle.alive()
        assert sum(runs(worker, job_id) for worker in (owner, idle)) == 1


def test_redis_killed_mid_job_and_restarted(stack: Stack, tmp_path: Path) -> None:
    worker = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_animating(stack, job_id)
        process = stack.redis_server.process
        assert process is not None
        process.kill()
        process.wait(10)
        time.sleep(3)
        stack.redis_server.start()
        finish(client, stack, job_id)
        assert worker.alive()
        assert runs(worker, job_id) == 1


def test_redis_down_when_the_render_ends(stack: Stack, tmp_path: Path) -> None:
    """The render ends while Redis is down: the worker keeps it and records it once Redis
    is back (the lease lapsed meanwhile, and nobody else took the job)."""
    worker = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]

        def nearly_done() -> bool:
            job = Job.fetch(job_id, connection=stack.redis, serializer=SERIALIZER)
            progress = (job.meta or {}).get("progress") or {}
            return progress.get("stage") == "animating" and progress["frames_done"] >= FRAMES - 12

        wait_for(nearly_done, 90, "the render to be nearly done", 0.05)
        process = stack.redis_server.process
        assert process is not None
        process.kill()
        process.wait(10)
        wait_for(lambda: "Redis unavailable" in worker.log_text(), 60, "the end of the render")
        time.sleep(5)  # past the lease
        stack.redis_server.start()
        finish(client, stack, job_id)
        assert worker.alive() and runs(worker, job_id) == 1


def test_dead_worker_noticed_without_polling(stack: Stack, tmp_path: Path) -> None:
    doomed = stack.start_worker()
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api(job_retries=0) as client:
        job_id = submit(client, source, driving).json()["id"]
    wait_animating(stack, job_id)  # the API is gone: nobody polls
    doomed.kill()
    killed = time.monotonic()
    wait_for(lambda: redis_field(stack, job_id, "status") == "failed", 30, "the job to fail", 0.2)
    assert time.monotonic() - killed < 30


def test_worker_name_reusable_after_kill(stack: Stack, tmp_path: Path) -> None:
    env = worker_env(stack.redis_server.url, stack.storage_url, stack.queue)
    name = f"{stack.queue}-fixed"
    first = WorkerProcess(env, tmp_path / "first.log", name)
    stack.workers.append(first)
    stack.wait_workers(1)
    first.kill()
    second = WorkerProcess(env, tmp_path / "second.log", name)
    stack.workers.append(second)
    key = f"rq:worker:{name}"
    pid = str(second.process.pid).encode()
    wait_for(lambda: stack.redis.hget(key, "pid") == pid, 90, "the second worker to register")
    assert second.alive()
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        finish(client, stack, job_id)
