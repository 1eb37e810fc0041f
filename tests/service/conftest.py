"""Fixtures of the service tests: a `Stack`
per test (its own queue and storage folder, workers as subprocesses, the API in-process).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from core.jobs import JobQueue
from core.settings import ApiSettings
from service.app import create_app
from service.local import EmbeddedRedis
from tests.service.helpers import (
    ApiServer,
    WorkerProcess,
    wait_for,
    worker_env,
)


class Stack:
    """The service of one test: its queue, storage folder, workers and API."""

    def __init__(self, redis_server: EmbeddedRedis, folder: Path) -> None:
        self.redis_server = redis_server
        self.folder = folder
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.storage_url = (folder / "store").as_uri()
        self.workers: list[WorkerProcess] = []
        self.extra_settings: dict[str, Any] = {}
        self.extra_env: dict[str, str] = {}
        self.redis = Redis.from_url(redis_server.url)

    def settings(self, **overrides: Any) -> ApiSettings:
        """API settings on this stack's queue and storage."""
        values: dict[str, Any] = {
            "redis_url": self.redis_server.url,
            "storage_url": self.storage_url,
            "queue_name": self.queue,
            "worker_ttl": 20,
            **self.extra_settings,
        }
        values.update(overrides)
        return ApiSettings(**values)

    def jobs(self) -> JobQueue:
        """The queue as the API sees it."""
        return JobQueue(self.redis, self.settings())

    def start_worker(self, wait: bool = True, **env: str) -> WorkerProcess:
        """Start a worker subprocess; by default wait until it has registered."""
        name = f"{self.queue}-w{len(self.workers)}"
        environment = worker_env(
            self.redis_server.url, self.storage_url, self.queue, **{**self.extra_env, **env}
        )
        worker = WorkerProcess(environment, self.folder / f"{name}.log", name)
        self.workers.append(worker)
        if wait:
            self.wait_workers(sum(1 for w in self.workers if w.alive()))
        return worker

    def wait_workers(self, count: int, timeout: float = 60.0) -> None:
        """Wait until `count` workers have registered with a recent heartbeat."""

        def ready() -> bool:
            for worker in self.workers:
                if not worker.alive() and worker.process.returncode not in (0, None):
                    raise AssertionError(f"worker died:\n{worker.log_text()}")
            return self.jobs().live_workers() >= count

        wait_for(ready, timeout, f"{count} worker(s) to register", 0.1)

    @contextlib.contextmanager
    def api(self, **overrides: Any) -> Iterator[httpx.Client]:
        """The API (real HTTP, in-process uvicorn) and a client for it."""
        app = create_app(self.settings(**overrides))
        with ApiServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            yield client

    def close(self) -> None:
        """Stop every worker still running."""
        for worker in self.workers:
            worker.stop(timeout=10)


@pytest.fixture
def stack(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Stack]:
    """A fresh queue and storage folder on the session's Redis; workers stopped afterwards."""
    current = Stack(redis_server, tmp_path)
    try:
        yield current
    finally:
        current.close()
