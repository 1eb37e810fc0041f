"""Processes and servers the service tests run for real: redis-server, workers, the API.

Workers are `python -m core.cli worker` subprocesses with the tiny model configuration
and demo weights; the API is uvicorn in a thread of the test process (real HTTP).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from service.local import free_port
from tests.media_factory import write_image, write_video

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} ({value!r})")
        time.sleep(interval)


class WorkerProcess:
    """`python -m core.cli worker --demo-weights` with the tiny model, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str) -> None:
        self.metrics_port = free_port()
        self.name = name
        self.log_path = log_path
        command = [
            sys.executable, "-m", "core.cli", "worker", "--demo-weights",
            "--metrics-port", str(self.metrics_port), "--name", name,
        ]  # fmt: skip
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def metrics(self) -> str:
        """The worker's Prometheus text."""
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def signal(self, signum: int) -> None:
        """Send `signum` to the worker."""
        if self.alive():
            self.process.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; return the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-whatever, as on a lost machine."""
        self.process.kill()
        self.process.wait()

    def log_text(self) -> str:
        """What the worker logged."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")


class ApiServer:
    """uvicorn serving `app` on a free loopback port in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 20, "the API to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def clean_env(*prefixes: str) -> dict[str, str]:
    """This process's environment without the project's settings (MCNET_*, and the
    variables named by `prefixes`), with the repository on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCNET_", *prefixes))}
    env["PYTHONPATH"] = str(ROOT)
    return env


def serve_env(port: int, data: Path, **extra: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a `mcnet serve` with the tiny demo model on one CPU
    thread, its own Redis and storage in `data`, the API on `port`; `extra`: more settings."""
    env = clean_env("REDIS_URL", "STORAGE_URL")
    env.update({"MCNET_MODEL_CONFIG": "tiny", "MCNET_DEVICE": "cpu", "OMP_NUM_THREADS": "1"})
    env.update(extra)
    command = [
        sys.executable, "-m", "core.cli", "serve", "--demo-weights", "--port", str(port),
        "--data", str(data), "--worker-metrics-port", "0",
    ]  # fmt: skip
    return command, env


def worker_env(redis_url: str, storage_url: str, queue: str, **extra: str) -> dict[str, str]:
    """Environment of a worker subprocess: tiny model, fast heartbeats, one CPU thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCNET_", "REDIS_URL"))}
    env.update(
        {
            "REDIS_URL": redis_url,
            "STORAGE_URL": storage_url,
            "MCNET_QUEUE_NAME": queue,
            "MCNET_MODEL_CONFIG": "tiny",
            "MCNET_DEVICE": "cpu",
            "MCNET_BATCH_SIZE": "2",
            "MCNET_HEARTBEAT_INTERVAL": "0.5",
            "MCNET_LEASE_TTL": "4",
            "MCNET_RECOVERY_INTERVAL": "0.5",
            "MCNET_WORKER_TTL": "20",
            "MCNET_MAINTENANCE_INTERVAL": "2",
            "MCNET_SHUTDOWN_GRACE": "0",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def make_inputs(folder: Path, frames: int, seed: int = 0, size: int = 64) -> tuple[Path, Path]:
    """A random photo and a `frames`-frame video, `size` x `size` (jobs use crop=none)."""
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    source = write_image(folder / f"source-{seed}.png", photo)

    def frame(i: int) -> np.ndarray:
        shade = (seed * 37 + i * 29) % 200
        image = np.full((size, size, 3), shade, np.uint8)
        image[i % size : i % size + 8, 4:12] = 255
        return image

    driving = write_video(folder / f"driving-{seed}-{frames}.mp4", frame, count=frames)
    return source, driving


def submit(client: httpx.Client, source: Path, driving: Path, **options: str) -> httpx.Response:
    """POST /animate with the two files and option fields."""
    files = {
        "source": (source.name, source.read_bytes(), "application/octet-stream"),
        "driving": (driving.name, driving.read_bytes(), "application/octet-stream"),
    }
    data = {"crop": "none", **options}
    return client.post("/animate", files=files, data=data)


def wait_status(
    client: httpx.Client,
    job_id: str,
    statuses: tuple[str, ...] = ("finished", "failed", "canceled"),
    timeout: float = 60.0,
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Poll GET /jobs/{id} until its status is one of `statuses`; record each answer."""

    def check() -> dict[str, Any] | None:
        answer = client.get(f"/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if seen is not None:
            seen.append(body)
        return body if body["status"] in statuses else None

    result: dict[str, Any] = wait_for(check, timeout, f"job {job_id} to be {statuses}", 0.05)
    return result
