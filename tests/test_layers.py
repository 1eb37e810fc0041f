"""The layers as the images run them: the API loads no torch, the core no web framework.

`lint-imports` (CI) checks every import statement against the contracts in
pyproject.toml; this checks what a process really loads, lazy imports included.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded(module: str, names: tuple[str, ...]) -> list[str]:
    code = f"import sys, {module}; print(' '.join(n for n in {names!r} if n in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.split()


def test_the_api_loads_no_torch_model_or_worker() -> None:
    assert _loaded("service.app", ("torch", "cv2", "model", "worker")) == []


@pytest.mark.parametrize(
    "module",
    ["core.jobs", "core.settings", "core.storage", "core.cli", "core.logs"],
)
def test_the_core_loads_no_torch_and_no_web_framework(module: str) -> None:
    banned = ("torch", "cv2", "fastapi", "starlette", "service", "worker", "model")
    assert _loaded(module, banned) == []


@pytest.mark.parametrize("module", ["core.client", "core.client_cli", "core.template_client_cli"])
def test_the_client_loads_no_server_queue_store_or_model(module: str) -> None:
    banned = ("torch", "fastapi", "starlette", "redis", "rq", "boto3", "av", "service", "worker")
    assert _loaded(module, banned) == []
