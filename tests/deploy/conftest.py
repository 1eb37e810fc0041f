"""The stack of docker-compose.yml, built and started once for the container tests.

Images: the API and a CPU worker built from the repository's Dockerfile on a local Debian
base (tests/deploy/images.py), the worker with TORCH_INDEX=cpu as docker/compose.cpu.yml
sets it, from a local index standing in for the CPU index; Redis and Prometheus likewise
local. Each run tags its own images (`mcnet-test/api:<run>`), removed afterwards, so two
runs on one engine never use each other's. Files: docker-compose.yml +
docker/compose.cpu.yml + docker/compose.test.yml, with the README's default `.env`: no
Redis password, API keys on. The worker loads a checkpoint generated here (tiny configuration,
untrained), mounted read-only as a user would mount theirs. Afterwards `down -v` must
leave nothing of the project.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.local import free_port
from tests.deploy.engine import COMPOSE_FILE, CPU, TEST, Compose, docker
from tests.deploy.images import engine_answers, local_images, serve_index, torch_index_dir
from tests.prerequisites import missing, skip_unless

log = logging.getLogger(__name__)

CHECKPOINT_IN_CONTAINER = "/models/mcnet.safetensors"
IMAGE_LABEL = "org.opencontainers.image.title=mcnet-service"  # the Dockerfile's
NO_ENGINE = (
    "no Docker engine answers (`docker version`): the container tests need one, with "
    "debootstrap for their base image: apt-get install docker.io debootstrap, then "
    "dockerd --iptables=false --bridge=none (.ci/run does both)"
)


@dataclass
class Stack:
    """The running project and how to reach it from the host."""

    compose: Compose
    api_url: str
    prometheus_url: str
    folder: Path
    api_key: str = ""  # the stack runs with API keys on

    def client(self) -> httpx.Client:
        """An HTTP client of the API container (through its published port), with the key."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.api_url, timeout=30, headers=headers)

    def logs(self, *services: str) -> str:
        """The last lines the services logged (for failure messages)."""
        done = self.compose("logs", "--no-color", "--tail", "60", *services, check=False)
        return done.stdout[-6000:] + done.stderr[-2000:]

    def health(self, service: str) -> str:
        """The Docker health status of the service's container ("" without a healthcheck)."""
        state: dict[str, Any] = self.compose.inspect(service)["State"]
        health: dict[str, Any] = state.get("Health") or {}
        return str(health.get("Status", ""))

    def wait_healthy(self, service: str, timeout: float) -> None:
        """Wait, bounded, until the service's container is healthy."""
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.health(service)
            if status == "healthy":
                return
            time.sleep(1)
        raise AssertionError(
            f"{service} not healthy after {timeout:.0f} s ({status})\n{self.logs(service)}"
        )


def _checkpoint(folder: Path) -> Path:
    """A checkpoint file as `mcnet convert` writes one: tiny configuration, untrained."""
    from model.checkpoint import demo_networks, save_safetensors
    from model.config import MCNetConfig

    path = folder / "mcnet-tiny.safetensors"
    save_safetensors(demo_networks(MCNetConfig.tiny()), path)
    path.chmod(0o644)  # the container user (uid 10001) reads it
    return path


def _engine_missing() -> str | None:
    return None if engine_answers() else NO_ENGINE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests of the running stack skip without a Docker engine."""
    skip_unless(items, Path(__file__).parent, "stack", _engine_missing)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Build the images, start the project, and take it down (asserting nothing is left)."""
    if not engine_answers():
        missing(NO_ENGINE)
    images = local_images()
    index = torch_index_dir()
    folder = tmp_path_factory.mktemp("deploy")
    api_port, prometheus_port = free_port(), free_port()
    api_key = secrets.token_hex(16)
    run = f"{os.getpid()}-{secrets.token_hex(3)}"
    tags = [f"mcnet-test/api:{run}", f"mcnet-test/worker:{run}"]
    env = {
        "MCNET_API_IMAGE": tags[0],
        "MCNET_WORKER_IMAGE": tags[1],
        "MCNET_CHECKPOINT": str(_checkpoint(folder)),
        "MCNET_CHECKPOINT_IN_CONTAINER": CHECKPOINT_IN_CONTAINER,
        "MCNET_API_PORT": str(api_port),
        "MCNET_PROMETHEUS_PORT": str(prometheus_port),
        "MCNET_ENCODE_PRESET": "ultrafast",
        "API_KEYS": f"deploy-test:{api_key}",
    }
    project = Compose(f"mcnet-test-{run}", [COMPOSE_FILE, CPU, TEST], env)
    running = Stack(
        project,
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{prometheus_port}",
        folder,
        api_key,
    )
    try:
        with serve_index(index) as index_url:
            project.env.update(images.compose_env(index_url))
            project("build", timeout=1800)
        up = project("up", "-d", "--wait", "--wait-timeout", "300", timeout=360, check=False)
        if up.returncode != 0:
            raise AssertionError(f"compose up failed:\n{up.stderr[-3000:]}\n{running.logs()}")
        yield running
    finally:
        (folder / "compose.log").write_text(running.logs())
        project("down", "--volumes", "--remove-orphans", "--timeout", "30", timeout=180)
        left = project.leftovers()
        # this run's images (their layers stay, as the build cache of the next run)
        docker("image", "rm", "--no-prune", *tags, timeout=120, check=False)
        docker("image", "prune", "--force", "--filter", f"label={IMAGE_LABEL}", timeout=120)
        assert left == {"containers": [], "networks": [], "volumes": []}, left
