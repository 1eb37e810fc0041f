"""The compose files, the Dockerfiles and the Prometheus config, checked without containers:
rendered by Compose v2, linted, and the rendered environments fed to the settings exactly
as each container gets them."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from core.settings import ApiSettings, QueueSettings, WorkerSettings
from core.storage import open_storage
from tests.deploy.engine import (
    COMPOSE_FILE,
    CPU,
    ENV_EXAMPLE,
    GPUS,
    REDIS_PUBLIC,
    ROOT,
    TEST,
    Compose,
    run,
)
from tests.prerequisites import require_promtool

CHECKPOINT = "/srv/models/mcnet_vox256.pth.tar"
# every override the README shows, each on top of docker-compose.yml
LAYOUTS = {
    "gpu": [COMPOSE_FILE],
    "some-gpus": [COMPOSE_FILE, GPUS],
    "cpu": [COMPOSE_FILE, CPU],
    "redis-public": [COMPOSE_FILE, REDIS_PUBLIC],
    "container-test": [COMPOSE_FILE, CPU, TEST],
}
SETTINGS = {"api": ApiSettings, "worker": WorkerSettings}


def _example_env() -> dict[str, str]:
    """.env.example as a user's .env: every variable, each empty, but the checkpoint."""
    names = re.findall(r"^([A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.M)
    return {**dict.fromkeys(names, ""), "MCNET_CHECKPOINT": CHECKPOINT, "MCNET_GPUS": "1,2"}


ENVIRONMENTS = {
    "defaults": {"MCNET_CHECKPOINT": CHECKPOINT},
    "env-example-as-is": _example_env(),
    "aws-s3": {
        **_example_env(),
        "STORAGE_URL": "s3://mcnet-results/prod",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "REDIS_PASSWORD": "0123abcd",
    },
}


def _render(files: list[Path], env: dict[str, str]) -> dict[str, Any]:
    return Compose("mcnet", files, env).config()


def _settings_of(
    environment: dict[str, Any], cls: type[QueueSettings], monkeypatch: pytest.MonkeyPatch
) -> QueueSettings:
    """`cls` read from exactly this environment (the container's, nothing of the host's)."""
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, "" if value is None else str(value))
    return cls()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_renders(layout: str) -> None:
    env = {**_example_env(), "REDIS_PASSWORD": "0123abcd"}
    services = _render(LAYOUTS[layout], env)["services"]
    assert {"redis", "api", "worker", "prometheus"} <= set(services)


def _gpus(service: dict[str, Any]) -> list[dict[str, Any]]:
    return list(service["deploy"]["resources"]["reservations"]["devices"])


def test_the_worker_runs_one_process_per_gpu_of_the_host() -> None:
    services = _render(LAYOUTS["gpu"], {"MCNET_CHECKPOINT": CHECKPOINT})["services"]
    worker = services["worker"]
    assert worker["command"] == ["mcnet", "workers"]
    assert worker["environment"]["MCNET_WORKERS"] == "auto"
    [gpus] = _gpus(worker)
    assert gpus["count"] == -1 and "device_ids" not in gpus  # all: `count: all`


def test_the_gpus_override_reserves_only_the_listed_gpus() -> None:
    env = {"MCNET_CHECKPOINT": CHECKPOINT, "MCNET_GPUS": "1,2", "MCNET_WORKERS": "4"}
    worker = _render(LAYOUTS["some-gpus"], env)["services"]["worker"]
    [gpus] = _gpus(worker)
    assert gpus["device_ids"] == ["1,2"] and "count" not in gpus
    assert worker["environment"]["MCNET_WORKERS"] == "4"  # two processes per GPU


def test_a_wrong_setting_does_not_restart_forever() -> None:
    """A container that exits 2 (a wrong setting) is restarted a few times, then stays
    stopped; the README says it stops."""
    for layout in ("gpu", "some-gpus", "cpu"):
        env = {**_example_env(), "MCNET_GPUS": "1"}
        services = _render(LAYOUTS[layout], env)["services"]
        for name in ("api", "worker"):
            assert services[name]["restart"] == "on-failure:5", (layout, name)


def test_cpu_layout_reserves_no_gpu() -> None:
    services = _render(LAYOUTS["cpu"], _example_env())["services"]
    assert "deploy" not in services["worker"] or not services["worker"]["deploy"]
    assert services["worker"]["environment"]["MCNET_DEVICE"] == "cpu"
    threads = _render(
        LAYOUTS["cpu"], {**_example_env(), "MCNET_WORKERS": "2", "MCNET_WORKER_THREADS": "4"}
    )["services"]["worker"]["environment"]
    assert (threads["MCNET_WORKERS"], threads["MCNET_WORKER_THREADS"]) == ("2", "4")


def test_public_redis_needs_a_password() -> None:
    project = Compose("mcnet", LAYOUTS["redis-public"], _example_env())
    done = project("config", check=False)
    assert done.returncode != 0 and "REDIS_PASSWORD" in done.stderr, done.stderr


def test_env_example_names_every_variable_compose_reads() -> None:
    read = set()
    for path in [COMPOSE_FILE, CPU, GPUS, REDIS_PUBLIC]:
        read |= set(re.findall(r"\$\{([A-Z0-9_]+)", path.read_text()))
    assert read - set(_example_env()) == set()


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
@pytest.mark.parametrize("layout", ["gpu", "some-gpus", "cpu"])
def test_settings_accept_each_service_environment(
    layout: str, environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ENVIRONMENTS[environment]
    if layout == "some-gpus":  # the override requires the list
        env = {**env, "MCNET_GPUS": "1,2"}
    services = _render(LAYOUTS[layout], env)["services"]
    for name, cls in SETTINGS.items():
        if name not in services:
            continue
        settings = _settings_of(services[name]["environment"], cls, monkeypatch)
        assert settings.redis_url and settings.redis_url.endswith("@redis:6379/0")
        assert settings.s3_endpoint_url is None  # "" in the file: unset
        # the storage a container opens at start (boto3 makes its client without a request)
        storage = open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url)
        assert type(storage).__name__ == ("S3Storage" if environment == "aws-s3" else "FileStorage")
        if isinstance(settings, WorkerSettings):
            assert settings.batch_size is None and settings.device in ("cuda", "cpu")
            assert str(settings.checkpoint).startswith("/models/mcnet")


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("worker", "MCNET_BATCH_SIZE", "eight"),
        ("worker", "MCNET_PRECISION", "fp8"),
        ("api", "MCNET_PORT", "http"),
        ("api", "MCNET_RESULT_TTL", "5"),
    ],
)
def test_a_wrong_setting_stops_with_one_line(command: str, variable: str, value: str) -> None:
    service = _render(LAYOUTS["gpu"], _example_env())["services"][command]
    env = {key: str(val) for key, val in service["environment"].items()}
    env[variable] = value
    done = run(
        [sys.executable, "-m", "core.cli", command],
        timeout=60,
        env={**env, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("mcnet: invalid setting: "), done.stderr
    assert f"{variable}={value!r}" in lines[0], lines[0]


def test_hadolint_passes_every_dockerfile() -> None:
    dockerfiles = [ROOT / "Dockerfile", *sorted((ROOT / "docker" / "test-images").glob("*"))]
    dockerfiles = [path for path in dockerfiles if path.name.endswith("Dockerfile")]
    hadolint = Path(sys.executable).parent / "hadolint"
    done = run([hadolint, *dockerfiles], timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    require_promtool()
    done = run(
        ["promtool", "check", "config", ROOT / "docker" / "prometheus" / "prometheus.yml"],
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _torch_index_case(value: str, url: str = "") -> tuple[int, str, str]:
    """The worker image's TORCH_INDEX `case` (from the Dockerfile), run in sh for `value`."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "\n")
    block = text[text.index('case "$TORCH_INDEX" in') : text.index("esac") + len("esac")]
    script = f'{block}\necho "$index"\n'
    done = run(
        ["sh", "-c", script],
        timeout=10,
        env={"PATH": "/usr/bin:/bin", "TORCH_INDEX": value, "TORCH_INDEX_URL": url},
        check=False,
    )
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def test_torch_index_message_says_what_the_code_accepts() -> None:
    assert _torch_index_case("cu130")[:2] == (0, "")
    for name in ("cpu", "cu126", "cu132"):
        code, index, _ = _torch_index_case(name)
        assert code == 0 and index == f"--index-url https://download.pytorch.org/whl/{name}"
    code, index, _ = _torch_index_case("cpu", "http://mirror.example/simple/")
    assert code == 0 and index == "--index-url http://mirror.example/simple/"
    for wrong in ("rocm6.2", "cuda", "nightly"):
        code, _, message = _torch_index_case(wrong)
        assert code == 1 and f"not '{wrong}'" in message, message
        # the message names what is accepted, and nothing that is refused
        assert "cu130" in message and "cpu" in message and "cuNNN" in message, message
        assert "another index" not in message and "any" not in message.lower(), message
