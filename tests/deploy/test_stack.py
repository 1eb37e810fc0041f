"""The compose stack, driven end to end over HTTP: jobs, a killed worker, a restarted Redis,
metrics as Prometheus reads them. Every wait is bounded in time."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.deploy.conftest import Stack
from tests.deploy.engine import Compose, docker, run
from tests.media_factory import (
    Audio,
    face_image,
    probe_output,
    talking_face_frames,
    write_image,
    write_video,
)
from tests.prerequisites import require_promtool

TERMINAL = ("finished", "failed", "canceled")


def _inputs(folder: Path, frames: int) -> tuple[Path, Path]:
    """A face photo (301x221 JPEG) and a talking-face video of `frames` frames with sound."""
    photo = write_image(folder / "face.jpg", face_image(301, 221, 150, 100, 45), fmt="JPEG")
    video = write_video(folder / f"talk-{frames}.mp4", talking_face_frames(frames), audio=Audio())
    return photo, video


def _submit(client: httpx.Client, photo: Path, video: Path) -> str:
    files = {
        "source": (photo.name, photo.read_bytes(), "image/jpeg"),
        "driving": (video.name, video.read_bytes(), "video/mp4"),
    }
    answer = client.post("/animate", files=files, data={"seed": "3"})
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def _job(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    """GET /jobs/{id}; None while the API cannot answer (Redis restarting)."""
    try:
        answer = client.get(f"/jobs/{job_id}")
    except httpx.TransportError:
        return None
    if answer.status_code == 503:
        return None
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _wait_job(
    stack: Stack, client: httpx.Client, job_id: str, timeout: float, statuses=TERMINAL
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        body = _job(client, job_id) or body
        if body is not None and body["status"] in statuses:
            return body
        time.sleep(0.5)
    raise AssertionError(
        f"job {job_id} not {statuses} after {timeout:.0f} s: {body}\n{stack.logs('worker')}"
    )


def test_job_through_the_api_container_gives_a_playable_mp4(stack: Stack) -> None:
    photo, video = _inputs(stack.folder, frames=10)
    with stack.client() as client:
        assert client.get("/readyz").status_code == 200, client.get("/readyz").text
        job_id = _submit(client, photo, video)
        final = _wait_job(stack, client, job_id, timeout=180)
        assert final["status"] == "finished", final
        assert final["progress"] == {"stage": "done", "frames_done": 10, "frames_total": 10}
        result = client.get(f"/jobs/{job_id}/result")
        assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    mp4 = stack.folder / "result.mp4"
    mp4.write_bytes(result.content)
    probed = probe_output(mp4)
    assert (probed.frames, probed.fps) == (10, 25.0)
    assert (probed.width, probed.height) == (300, 220)  # pasted back into the photo (even)
    assert probed.video_codec == "h264" and probed.moov_before_mdat
    assert probed.audio_codec == "aac" and probed.audio_seconds is not None
    assert abs(probed.audio_seconds - 0.4) < 0.05


def test_metrics_of_api_and_worker_pass_promtool_and_prometheus_scrapes_both(
    stack: Stack,
) -> None:
    require_promtool()
    with stack.client() as client:
        api_text = client.get("/metrics").text
    worker_text = stack.compose(
        "exec",
        "-T",
        "worker",
        "python",
        "-c",
        "import os, sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
        "'http://127.0.0.1:%s/metrics' % os.environ['MCNET_METRICS_PORT']).read().decode())",
    ).stdout
    assert "mcnet_http_requests_total" in api_text
    assert "mcnet_worker_frames_animated_total" in worker_text
    for name, text in (("api", api_text), ("worker", worker_text)):
        done = run(["promtool", "check", "metrics"], timeout=30, check=False, input_text=text)
        assert done.returncode == 0 and not done.stdout.strip(), (name, done.stdout, done.stderr)

    # keys on: the API's port wants a key for /metrics; Prometheus scrapes every API replica
    # on its internal port and every worker process (docker/prometheus/prometheus.yml): as
    # many worker targets up as workers are live (ports no process serves stay down)
    assert httpx.get(f"{stack.api_url}/metrics", timeout=10).status_code == 401
    apis = len(stack.compose("ps", "-q", "api").stdout.split())
    with stack.client() as client:
        workers = int(client.get("/readyz").json()["workers"])
    containers = {"mcnet-api": apis, "mcnet-worker": workers}
    deadline = time.monotonic() + 120
    health: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        answer = httpx.get(f"{stack.prometheus_url}/api/v1/targets", timeout=10)
        health = {job: [] for job in containers}
        for target in answer.json()["data"]["activeTargets"]:
            health.setdefault(target["labels"]["job"], []).append(target["health"])
        if (
            health["mcnet-api"] == ["up"] * apis
            and workers > 0
            and health["mcnet-worker"].count("up") == workers
        ):
            return
        time.sleep(2)
    raise AssertionError(f"Prometheus targets: {health}; containers: {containers}")


def _worker_pid(stack: Stack) -> int:
    return int(stack.compose.inspect("worker")["State"]["Pid"])


def test_killed_worker_comes_back_and_its_job_ends(stack: Stack) -> None:
    photo, video = _inputs(stack.folder, frames=40)
    restarts_before = int(stack.compose.inspect("worker")["RestartCount"])
    with stack.client() as client:
        job_id = _submit(client, photo, video)
        deadline = time.monotonic() + 120
        body: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            body = _job(client, job_id)
            if body and body["progress"]["frames_done"] > 0:
                break
            time.sleep(0.2)
        assert body and 0 < body["progress"]["frames_done"] < 40, body
        # SIGKILL from the host to the worker process: a crash (`docker kill` would count as
        # a manual stop, which the restart policy honours: no restart)
        os.kill(_worker_pid(stack), signal.SIGKILL)
        final = _wait_job(stack, client, job_id, timeout=300)
    # retries are left (MCNET_JOB_RETRIES=2): the job runs again and finishes
    assert final["status"] == "finished", final
    assert final["progress"]["frames_done"] == 40, final
    assert int(stack.compose.inspect("worker")["RestartCount"]) == restarts_before + 1
    stack.wait_healthy("worker", timeout=120)


def test_queued_jobs_survive_a_redis_restart(stack: Stack) -> None:
    photo, video = _inputs(stack.folder, frames=5)
    stack.compose("stop", "worker", timeout=60)
    try:
        with stack.client() as client:
            ids = [_submit(client, photo, video) for _ in range(2)]
            for job_id in ids:
                assert _wait_job(stack, client, job_id, 10, ("queued",))["status"] == "queued"
            stack.compose("restart", "redis", timeout=60)
            stack.wait_healthy("redis", timeout=60)
            for job_id in ids:
                assert _wait_job(stack, client, job_id, 60, ("queued",))["status"] == "queued"
            stack.compose("start", "worker", timeout=60)
            for job_id in ids:
                assert _wait_job(stack, client, job_id, 180)["status"] == "finished"
    finally:
        stack.compose("start", "worker", timeout=60)


def test_api_healthcheck_follows_mcnet_port(stack: Stack) -> None:
    """The API image on another port is healthy: its healthcheck asks MCNET_PORT."""
    network = f"{stack.compose.project}_default"
    name = f"{stack.compose.project}-api-port"
    env = stack.compose.config()["services"]["api"]["environment"]
    args = [f"--env={key}={value}" for key, value in env.items() if key != "MCNET_PORT"]
    image = stack.compose.env["MCNET_API_IMAGE"]
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "--env=MCNET_PORT=8123",
        *args,
        "--health-interval=2s",
        image,
    )
    try:
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            status = docker("inspect", "-f", "{{.State.Health.Status}}", name).strip()
            if status == "healthy":
                break
            time.sleep(1)
        assert status == "healthy", f"{status}\n{docker('logs', name)}"
    finally:
        docker("rm", "-f", name)


def _wrong_worker(stack: Stack, name: str, **env: str) -> tuple[dict[str, Any], str]:
    """Start the worker service alone in a project of its own with `env` changed; wait
    (bounded) until its container has stopped for good; its state and its log."""
    project = Compose(
        f"{stack.compose.project}-{name}", stack.compose.files, {**stack.compose.env, **env}
    )
    try:
        project("up", "-d", "--no-deps", "worker", timeout=120)
        deadline = time.monotonic() + 180
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            details = project.inspect("worker")
            state = {**details["State"], "RestartCount": details["RestartCount"]}
            if not state["Running"] and not state["Restarting"] and state["RestartCount"] >= 5:
                time.sleep(3)  # no further restart comes
                details = project.inspect("worker")
                if not details["State"]["Running"]:
                    return state, project("logs", "--no-color", "worker").stdout
            time.sleep(1)
        raise AssertionError(f"the worker kept restarting: {state}")
    finally:
        project("down", "--volumes", "--timeout", "5", timeout=120, check=False)


def test_a_wrong_setting_stops_the_container_after_a_few_tries(stack: Stack) -> None:
    state, logs = _wrong_worker(stack, "wrong", MCNET_PRECISION="fp8")
    assert state["ExitCode"] == 2 and state["RestartCount"] == 5, state
    assert "MCNET_PRECISION='fp8'" in logs and "Traceback" not in logs, logs


def test_a_mistyped_checkpoint_names_the_variable_and_the_host_path(stack: Stack) -> None:
    typo = stack.folder / "mdoels" / "mcnet.safetensors"
    state, logs = _wrong_worker(stack, "typo", MCNET_CHECKPOINT=str(typo))
    assert state["ExitCode"] == 2, state
    assert f"MCNET_CHECKPOINT={typo}" in logs and "Traceback" not in logs, logs


def test_the_worker_image_keeps_no_wheel_layer(stack: Stack) -> None:
    """TORCH_WHEELS: the wheels torch was installed from are in no layer of the image."""
    image = stack.compose.env["MCNET_WORKER_IMAGE"]
    lines = docker("history", "--no-trunc", "--human=false", "--format", "{{json .}}", image)
    layers = [json.loads(line) for line in lines.splitlines() if line.strip()]
    heavy = [
        (layer["CreatedBy"][-120:], layer["Size"])
        for layer in layers
        if "wheels" in layer["CreatedBy"] and int(layer["Size"]) > 1_000_000
    ]
    assert heavy == [], heavy
