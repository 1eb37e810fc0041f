"""`mcnet serve`: API, workers and an embedded Redis from one command."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from core.cli_options import MODEL_OPTIONS, given_options
from core.worker_pool import worker_command
from service.local import _parser, find_redis_server, serve_worker_env
from tests.service.helpers import (
    ROOT,
    clean_env,
    free_port,
    make_inputs,
    serve_env,
    submit,
    wait_for,
    wait_status,
)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_runs_everything_and_stops_cleanly(tmp_path: Path) -> None:
    assert find_redis_server() is not None
    port, redis_port = free_port(), free_port()
    data = tmp_path / "data"
    command, env = serve_env(port, data, MCNET_EMBEDDED_REDIS_PORT=str(redis_port))
    command += ["--workers", "2"]
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def ready() -> bool:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    return client.get("/readyz").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(ready, 90, "mcnet serve to be ready", 0.2)
            wait_for(lambda: client.get("/readyz").json()["workers"] == 2, 90, "both workers")
            source, driving = make_inputs(tmp_path, frames=2)
            job_id = submit(client, source, driving).json()["id"]
            assert wait_status(client, job_id, timeout=90)["status"] == "finished"
            assert client.get(f"/jobs/{job_id}/result").status_code == 200
        assert (data / "files" / "results" / f"{job_id}.mp4").is_file()
        assert list((data / "redis").rglob("*.aof*")), "Redis persists with AOF"
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, (tmp_path / "serve.log").read_text()
        assert not _port_open(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    lines = (tmp_path / "serve.log").read_text().splitlines()
    assert "2 worker(s) x 1 thread: asked for (" in lines[0] and "physical core(s)" in lines[0]
    assert f"embedded Redis on redis://127.0.0.1:{redis_port}/0" in lines[1]
    redis_says = [line for line in lines if re.match(r"\d+:[MCSX] \d", line)]
    assert not redis_says, "Redis's own messages (its shutdown, its advice) are DEBUG"


def test_serve_refuses_to_start_without_a_model(tmp_path: Path) -> None:
    env = clean_env()
    for demo in ("", "false"):  # MCNET_DEMO_WEIGHTS=false asks for no model at all
        answer = subprocess.run(
            [sys.executable, "-m", "core.cli", "serve", "--data", str(tmp_path)],
            env={**env, "MCNET_DEMO_WEIGHTS": demo}, cwd=ROOT, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert answer.returncode == 2
        assert "No model: pass --checkpoint PATH" in answer.stderr


def test_worker_command_passes_model_options_through() -> None:
    args = _parser().parse_args(
        ["--demo-weights", "--checkpoint", "/models/mcnet.pth.tar", "--device", "cuda",
         "--precision", "fp16", "--batch-size", "8", "--compile"]
    )  # fmt: skip
    command = worker_command(given_options(args, MODEL_OPTIONS))
    assert command[1:4] == ["-m", "core.cli", "worker"]
    assert "--demo-weights" in command and "--compile" in command
    joined = " ".join(command)
    for part in ("--checkpoint /models/mcnet.pth.tar", "--device cuda", "--precision fp16",
                 "--batch-size 8"):  # fmt: skip
        assert part in joined
    plain = worker_command(given_options(_parser().parse_args([]), MODEL_OPTIONS))
    assert plain[4:] == []


def test_a_taken_port_ends_serve_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    env = clean_env("REDIS_URL")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flags, setting in (
            (["--port", str(port)], "MCNET_PORT"),
            (
                ["--port", str(free_port()), "--worker-metrics-port", str(port)],
                "MCNET_METRICS_PORT",
            ),
        ):
            answer = subprocess.run(
                [sys.executable, "-m", "core.cli", "serve", "--demo-weights", "--data",
                 str(tmp_path), *flags],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert answer.returncode == 2, answer.stderr
            lines = answer.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in answer.stderr, answer.stderr
            assert f"Port {port} on 127.0.0.1 is already in use" in lines[0]
            assert setting in lines[0]


def test_serve_keeps_worker_metrics_on_loopback_and_stops_jobs_at_once() -> None:
    env = serve_worker_env({"PATH": "/bin"})
    assert env["MCNET_METRICS_HOST"] == "127.0.0.1" and env["MCNET_SHUTDOWN_GRACE"] == "0"
    chosen = serve_worker_env({"MCNET_METRICS_HOST": "0.0.0.0", "MCNET_SHUTDOWN_GRACE": ""})
    assert chosen["MCNET_METRICS_HOST"] == "0.0.0.0" and chosen["MCNET_SHUTDOWN_GRACE"] == "0"
