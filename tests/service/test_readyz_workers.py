"""/readyz against real workers and stores: a killed worker stops counting within a few
heartbeats, a paused one counts again with its model label once it resumes (even when its
RQ record expired meanwhile), and a stalled S3 endpoint is answered within seconds."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import S3_ENV
from tests.service.conftest import Stack
from tests.service.helpers import wait_for


def _ready(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/readyz").json()
    return body


def test_killed_worker_stops_counting_within_seconds(stack: Stack) -> None:
    doomed = stack.start_worker()
    with stack.api() as client:
        assert _ready(client)["workers"] == 1
        doomed.kill()  # no clean exit: nothing withdraws it
        # RQ's own record of it stays "alive" for its worker_ttl (20 s here)
        wait_for(lambda: _ready(client)["workers"] == 0, 8, "the killed worker to stop counting")


def test_paused_worker_comes_back_with_its_model(stack: Stack) -> None:
    worker = stack.start_worker()
    with stack.api() as client:
        assert _ready(client)["models"] == ["demo"]
        worker.signal(signal.SIGSTOP)
        try:
            wait_for(lambda: _ready(client)["workers"] == 0, 8, "the paused worker to lapse")
            stack.redis.delete(f"rq:worker:{worker.name}")  # as a long pause expires it
        finally:
            worker.signal(signal.SIGCONT)
        body = wait_for(
            lambda: (ready := _ready(client))["workers"] == 1 and ready, 30, "it to count again"
        )
        assert body["models"] == ["demo"] and body["demo"] is True, body


@pytest.fixture
def stalled_endpoint() -> Iterator[str]:
    """An HTTP endpoint that takes connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_readyz_with_a_stalled_s3_answers_quickly(
    stack: Stack, stalled_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    stack.storage_url = "s3://stalled-bucket/mcnet"
    with stack.api(s3_endpoint_url=stalled_endpoint) as client:
        for _ in range(3):  # each answer bounded (else ReadTimeout), the first and later ones
            answer = client.get("/readyz", timeout=httpx.Timeout(5.0))
            assert answer.status_code == 503 and answer.json()["storage"] is False
