"""`mcnet serve` supervises its worker: killed, it is started again; /readyz stays ready
(the API accepts jobs) and reports no live worker until it is back, and jobs submitted
meanwhile run once it is."""

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

                def no_worker() -> bool:
                    answer = client.get("/readyz")
                    assert answer.status_code == 200, answer.text  # still accepts jobs
                    return answer.json()["workers"] == 0

                wait_for(ready, 90, "mcnet serve to be ready", 0.2)
                [first] = _worker_pids(process.pid)
                os.kill(first, signal.SIGKILL)
                wait_for(no_worker, 10, "/readyz to report no live worker")
                source, driving = make_inputs(tmp_path, frames=2)
                job_id = submit(client, source, driving).json()["id"]
                wait_for(ready, 90, "the worker to be back", 0.2)
                assert _worker_pids(process.pid) != [first]
                assert wait_status(client, job_id, timeout=90)["status"] == "finished"
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert "starting it again" in log_path.read_text()
