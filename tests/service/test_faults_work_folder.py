"""A worker whose work folder (MCNET_WORK_DIR, a 8 MiB tmpfs here) becomes unusable: it
takes no more jobs and says why (log, health file, /readyz); the job it held goes back to
the queue without spending a retry, and runs once the folder can be written again."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq.job import Job

from core.jobs import SERIALIZER
from tests.service.conftest import Stack
from tests.service.helpers import WorkerProcess, make_inputs, submit, wait_for
from tests.service.test_faults_stalls import FRAMES, finish, redis_field, runs, wait_animating

WHY = "work folder (MCNET_WORK_DIR) cannot be written"


@pytest.fixture
def work_mount(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs for the worker's work folder, unmounted afterwards."""
    mount = tmp_path / "work-tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@contextlib.contextmanager
def _filled(mount: Path) -> Iterator[None]:
    """Fill the tmpfs to the last byte; free it afterwards."""
    filler = mount / "filler"
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        for _ in range(160):  # 160 x 64 KiB > 8 MiB
            handle.write(b"\0" * 65536)
            handle.flush()
    try:
        yield
    finally:
        filler.unlink()


def _remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)


def _retries_left(stack: Stack, job_id: str) -> int | None:
    return Job.fetch(job_id, connection=stack.redis, serializer=SERIALIZER).retries_left


def _says_why(stack: Stack, worker: WorkerProcess, health: Path, client: object) -> None:
    wait_for(lambda: "takes no jobs" in worker.log_text(), 60, "the worker to say why", 0.1)
    assert WHY in worker.log_text()
    assert "Traceback" not in worker.log_text()
    assert WHY in health.read_text() and health.stat().st_mtime < 3600  # a stale file
    ready = client.get("/readyz").json()  # type: ignore[attr-defined]
    assert ready["workers"] == 0, ready
    assert WHY in ready["workers_not_taking_jobs"][worker.name], ready
    assert stack.jobs().live_workers() == 0


def test_work_folder_full_mid_job(stack: Stack, work_mount: Path, tmp_path: Path) -> None:
    health = tmp_path / "health"
    worker = stack.start_worker(
        MCNET_WORK_DIR=str(work_mount / "work"), MCNET_HEALTH_FILE=str(health)
    )
    source, driving = make_inputs(tmp_path, frames=FRAMES)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        retries = _retries_left(stack, job_id)
        wait_animating(stack, job_id)
        with _filled(work_mount):
            _says_why(stack, worker, health, client)
            wait_for(
                lambda: redis_field(stack, job_id, "status") == "queued", 30, "the job requeued"
            )
            assert _retries_left(stack, job_id) == retries  # no retry spent
            later = submit(client, source, driving, seed="1").json()["id"]
            assert client.get(f"/jobs/{later}").json()["status"] == "queued"
        finish(client, stack, job_id)
        assert runs(worker, job_id) == 2 and worker.alive()
        finish(client, stack, later)
        assert "not taking jobs" not in health.read_text()


def test_work_folder_read_only_takes_no_job(stack: Stack, work_mount: Path, tmp_path: Path) -> None:
    health = tmp_path / "health"
    worker = stack.start_worker(
        MCNET_WORK_DIR=str(work_mount / "work"), MCNET_HEALTH_FILE=str(health)
    )
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        _remount(work_mount, "ro")
        try:
            job_ids = [submit(client, source, driving, seed=str(i)).json()["id"] for i in range(3)]
            _says_why(stack, worker, health, client)
            for job_id in job_ids:
                assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"
                assert _retries_left(stack, job_id) == 2  # none spent
            assert "failed" not in worker.log_text()
        finally:
            _remount(work_mount, "rw")
        for job_id in job_ids:
            finish(client, stack, job_id)
        assert stack.jobs().live_workers() == 1
