"""`mcnet workers`: the layout's worker processes, each restarted, all stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.service.conftest import Stack
from tests.service.helpers import ROOT, wait_for, worker_env
from tests.service.test_faults_serve import _worker_pids


def test_workers_runs_the_layout_and_restarts_each(stack: Stack, tmp_path: Path) -> None:
    env = worker_env(stack.redis_server.url, stack.storage_url, stack.queue)
    command = [
        sys.executable, "-m", "core.cli", "workers", "--workers", "2", "--threads", "1",
        "--demo-weights", "--metrics-port", "0", "--name", stack.queue,
    ]  # fmt: skip
    log_path = tmp_path / "workers.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:

            def live(count: int) -> bool:
                assert process.poll() is None, log_path.read_text()
                return stack.jobs().live_workers() == count

            wait_for(lambda: live(2), 90, "two workers", 0.2)
            first, second = _worker_pids(process.pid)
            os.kill(first, signal.SIGKILL)
            wait_for(lambda: live(1), 10, "the killed worker to be forgotten", 0.1)
            wait_for(lambda: live(2), 90, "the worker to be back", 0.2)
            assert second in _worker_pids(process.pid)
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0, log_path.read_text()
            assert not _worker_pids(process.pid)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    first_line = log_path.read_text().splitlines()[0]
    assert "2 worker(s) x 1 thread: asked for (" in first_line, first_line
