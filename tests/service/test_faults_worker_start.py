"""A worker that cannot reach Redis or its store when it starts: one line naming the
setting, then it waits and tries again with backoff, and starts working once they are
back, in the same process, with the model it loaded once."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from redis import Redis
from redis.exceptions import RedisError

from core.jobs import JobQueue
from service.local import find_redis_server, free_port
from tests.conftest import S3_ENV
from tests.service.conftest import Stack
from tests.service.helpers import (
    WorkerProcess,
    make_inputs,
    submit,
    wait_for,
    wait_status,
    worker_env,
)

LOADED = "model loaded in"


@pytest.fixture
def spare_port() -> int:
    return free_port()


def _redis(port: int, *args: str) -> subprocess.Popen[bytes]:
    binary = find_redis_server()
    assert binary is not None
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *args]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    client = Redis(port=port, password=args[-1] if "--requirepass" in args else None)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except RedisError:
            return False

    wait_for(answers, 20, "the spare redis-server", 0.1)
    return process


@pytest.fixture
def spare_redis(spare_port: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Redis servers the test starts on `spare_port`, stopped afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(20)


def _worker(
    tmp_path: Path, redis_url: str, storage_url: str, queue: str, **env: str
) -> WorkerProcess:
    environment = worker_env(redis_url, storage_url, queue, **env)
    return WorkerProcess(environment, tmp_path / f"{queue}.log", f"{queue}-w")


def _waits(worker: WorkerProcess, setting: str) -> None:
    """The worker said, in one line each time, which setting to check, and waits."""
    wait_for(lambda: worker.log_text().count(setting) >= 2, 30, f"two lines naming {setting}")
    text = worker.log_text()
    assert "Traceback" not in text, text
    assert text.count(LOADED) == 1 and worker.alive(), text
    line = next(line for line in text.splitlines() if setting in line)
    assert "trying again in" in line, line


def _works(stack: Stack, worker: WorkerProcess, tmp_path: Path, redis_url: str) -> None:
    """Once Redis and the store are back, the same process registers and runs a job."""
    jobs = JobQueue(Redis.from_url(redis_url), stack.settings(redis_url=redis_url))
    wait_for(lambda: jobs.live_workers() == 1, 90, "the worker to register", 0.2)
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(redis_url=redis_url) as client:
        job_id = submit(client, source, driving).json()["id"]
        assert wait_status(client, job_id, timeout=90)["status"] == "finished"
    text = worker.log_text()
    assert text.count(LOADED) == 1 and worker.alive(), text  # same process, one model load


def test_wrong_redis_password_then_fixed(
    stack: Stack, tmp_path: Path, spare_port: int, spare_redis: list[subprocess.Popen[bytes]]
) -> None:
    spare_redis.append(_redis(spare_port, "--requirepass", "right"))
    url = f"redis://:wrong@127.0.0.1:{spare_port}/0"
    worker = _worker(tmp_path, url, stack.storage_url, stack.queue)
    stack.workers.append(worker)
    _waits(worker, "REDIS_URL=redis://:***@127.0.0.1")
    assert "wrong" not in worker.log_text()  # the password is not logged
    Redis(port=spare_port, password="right").config_set("requirepass", "wrong")
    _works(stack, worker, tmp_path, url)


def test_redis_down_at_start_then_up(
    stack: Stack, tmp_path: Path, spare_port: int, spare_redis: list[subprocess.Popen[bytes]]
) -> None:
    url = f"redis://127.0.0.1:{spare_port}/0"
    worker = _worker(tmp_path, url, stack.storage_url, stack.queue)
    stack.workers.append(worker)
    _waits(worker, f"REDIS_URL={url}")
    spare_redis.append(_redis(spare_port))
    _works(stack, worker, tmp_path, url)


def test_s3_unreachable_at_start_then_up(
    stack: Stack, tmp_path: Path, spare_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    endpoint = f"http://127.0.0.1:{spare_port}"
    storage_url = "s3://late-bucket/mcnet"
    worker = _worker(
        tmp_path, stack.redis_server.url, storage_url, stack.queue,
        MCNET_S3_ENDPOINT_URL=endpoint, **S3_ENV,
    )  # fmt: skip
    stack.workers.append(worker)
    _waits(worker, f"STORAGE_URL={storage_url}, MCNET_S3_ENDPOINT_URL={endpoint}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=spare_port, verbose=False)
    server.start()
    try:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="late-bucket")
        stack.storage_url = storage_url
        stack.extra_settings = {"s3_endpoint_url": endpoint}
        _works(stack, worker, tmp_path, stack.redis_server.url)
    finally:
        stack.close()
        server.stop()
