"""The API's contract against the running app, keys on: the OpenAPI document is valid
(openapi-spec-validator), and Schemathesis with every check finds no failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from openapi_spec_validator import validate

from tests.service.conftest import Stack

KEY = "k-contract"
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 50  # per operation and phase: bounded, reproducible (fixed seed)
TIME_LIMIT_S = 240  # the run is killed past this


def test_the_openapi_document_is_valid(stack: Stack) -> None:
    with stack.api(api_keys=[f"ci:{KEY}"]) as client:
        answer = client.get("/openapi.json", headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200
    validate(answer.json())  # raises on any error (a dangling $ref included)


def test_schemathesis_finds_no_failure(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()  # /readyz is ready; nothing Schemathesis sends becomes a job
    with stack.api(api_keys=[f"ci:{KEY}"]) as client:
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG),
            "run", f"{client.base_url}/openapi.json",
            "--header", f"Authorization: Bearer {KEY}",
            "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", "20",
            "--workers", "1", "--request-timeout", "30", "--generation-database", "none",
            "--no-color", "--report", "junit", "--report-dir", str(tmp_path),
        ]  # fmt: skip
        environment = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S,
            env=environment,
            cwd=tmp_path,  # its cache folder goes there, not into the checkout
        )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "generated" in done.stdout and " 0 generated" not in done.stdout, done.stdout[-2000:]
