"""`mcnet serve` supervises each of its workers: killed, one is started again (the others
run on); /readyz stays ready (the API accepts jobs) and counts only the live workers, and
jobs submitted meanwhile run. Ctrl+C during a job puts it back in the queue at once."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from tests.service.helpers import (
    ROOT,
    free_port,
    make_inputs,
    serve_env,
    submit,
    wait_for,
    wait_status,
)


def _worker_pids(parent: int) -> list[int]:
    """Children of `parent` running `core.cli worker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"worker" in command:
            found.append(int(entry.name))
    return found


def test_serve_restarts_a_worker_that_dies(tmp_path: Path) -> None:
    port = free_port()
    command, env = serve_env(
        port,
        tmp_path / "data",
        MCNET_HEARTBEAT_INTERVAL="0.5",
        MCNET_LEASE_TTL="4",
        MCNET_RECOVERY_INTERVAL="0.5",
    )
    command += ["--workers", "2"]
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

                def ready() -> bool:
                    assert process.poll() is None, log_path.read_text()
                    try:
                        answer = client.get("/readyz")
                    except httpx.HTTPError:
                        return False
                    return answer.status_code == 200 and answer.json()["workers_available"]

                def workers() -> int:
                    answer = client.get("/readyz")
                    assert answer.status_code == 200, answer.text  # still accepts jobs
                    return int(answer.json()["workers"])

                wait_for(ready, 90, "mcnet serve to be ready", 0.2)
                wait_for(lambda: workers() == 2, 90, "both workers", 0.2)
                first, second = _worker_pids(process.pid)
                os.kill(first, signal.SIGKILL)
                wait_for(lambda: workers() == 1, 10, "/readyz to count one live worker")
                source, driving = make_inputs(tmp_path, frames=2)
                job_id = submit(client, source, driving).json()["id"]
                wait_for(lambda: workers() == 2, 90, "the worker to be back", 0.2)
                now = _worker_pids(process.pid)
                assert second in now and first not in now and len(now) == 2
                assert wait_status(client, job_id, timeout=90)["status"] == "finished"
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "starting it again" in log_path.read_text()


def test_ctrl_c_during_a_job_requeues_it_with_a_warning(tmp_path: Path) -> None:
    port = free_port()
    command, env = serve_env(port, tmp_path / "data")
    command += ["--workers", "1"]
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

                def ready() -> bool:
                    assert process.poll() is None, log_path.read_text()
                    try:
                        return client.get("/readyz").status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_for(ready, 90, "mcnet serve to be ready", 0.2)
                source, driving = make_inputs(tmp_path, frames=400)
                job_id = submit(client, source, driving, crop="none").json()["id"]

                def animating() -> bool:
                    progress = client.get(f"/jobs/{job_id}").json()["progress"]
                    return progress["stage"] == "animating" and progress["frames_done"] > 0

                wait_for(animating, 60, "the job to be animating", 0.1)
            process.send_signal(signal.SIGINT)  # Ctrl+C
            assert process.wait(60) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    requeued = [line for line in log_path.read_text().splitlines() if "requeued" in line]
    assert len(requeued) == 1 and " WARNING " in requeued[0] and job_id in requeued[0], requeued
