"""The monitoring files against a real Prometheus: Debian's `prometheus` on loopback
scrapes a live API (`mcnet api`, keys on, its internal metrics port) and a worker (tiny
model, demo weights), after one job finished, one failed and one was canceled, and a worker
failed to load its model. Every dashboard panel's query and every alert expression is then
evaluated through Prometheus' HTTP API. Also: JSON logs and the request id from the request
to the worker's lines and the webhook's headers. Bounded: each wait has a deadline (about a
minute in all)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from rq.suspension import resume, suspend

from service.local import free_port
from tests.prerequisites import missing
from tests.service.conftest import Stack
from tests.service.helpers import ROOT, make_inputs, submit, wait_for, worker_env

DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "mcnet.json"
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
RATE_INTERVAL = "1m"  # Grafana's $__rate_interval, for a 1 s scrape interval
KEYS = "ops:ops-key-0123456789,flood:flood-key-0123456789"
REQUEST_ID = "req-monitoring-test-1"
RATE_LIMIT = 300  # requests per key and minute: the test's polling stays under it
SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
# Panels that can only be empty here, and why.
EMPTY_PANELS = {"Device memory (CUDA)": "CUDA only: the test's worker runs on the CPU"}
# The alerts these events fire: 1 failed of 2 ended jobs is a failure ratio of 0.5, and a
# worker failed to start. Every other alert must stay quiet.
FIRING = {"McnetJobFailureRatioHigh", "McnetWorkerCannotStart"}
METRIC_NAME = re.compile(r"\b(mcnet_[a-z0-9_]+|process_[a-z0-9_]+|up(?=\{))")


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A webhook receiver on loopback; the headers of each message it got."""
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()


class _Process:
    """A subprocess logging to a file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _api_env(stack: Stack, port: int, metrics_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCNET_", "REDIS_URL"))}
    env.update(
        REDIS_URL=stack.redis_server.url,
        STORAGE_URL=stack.storage_url,
        API_KEYS=KEYS,
        MCNET_QUEUE_NAME=stack.queue,
        MCNET_HOST="127.0.0.1",
        MCNET_PORT=str(port),
        MCNET_INTERNAL_METRICS_PORT=str(metrics_port),
        MCNET_WORKER_TTL="20",
        MCNET_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT),
        MCNET_WEBHOOK_SECRET=SECRET,
        MCNET_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        MCNET_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def _prometheus(folder: Path, api: str, worker: str) -> tuple[_Process, str]:
    binary = shutil.which("prometheus")
    if binary is None:
        missing("Debian's `prometheus` is needed: apt-get install prometheus")
    shutil.copy(ALERTS, folder / "alerts.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": "mcnet-api", "static_configs": [{"targets": [api]}]},
            {"job_name": "mcnet-worker", "static_configs": [{"targets": [worker]}]},
        ],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        binary, f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
    ]  # fmt: skip
    return _Process(
        command, dict(os.environ), folder / "prometheus.log"
    ), f"http://127.0.0.1:{port}"


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _panels() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"].replace("$__rate_interval", RATE_INTERVAL))
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def _alerts() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_every_panel_and_alert_against_a_real_prometheus(
    stack: Stack, tmp_path: Path, receiver: tuple[str, list[dict[str, str]]]
) -> None:
    hook_url, hooks = receiver
    api_port, internal_port = free_port(), free_port()
    api = _Process(
        [sys.executable, "-m", "core.cli", "api"],
        _api_env(stack, api_port, internal_port),
        tmp_path / "api.log",
    )
    ops = {"Authorization": "Bearer ops-key-0123456789"}
    prometheus: _Process | None = None
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=ops, timeout=30)
        wait_for(lambda: _answers(client), 30, "the API to start", 0.2)

        # keys on: /metrics needs one on the API's port; the internal port needs none
        assert httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=5).status_code == 401
        internal = httpx.get(f"http://127.0.0.1:{internal_port}/metrics", timeout=5)
        assert internal.status_code == 200 and "mcnet_redis_up 1.0" in internal.text

        photo, video = make_inputs(tmp_path, frames=4)
        _, long_video = make_inputs(tmp_path, frames=120, seed=1)
        # failed: its inputs are gone before any worker takes it (reason class `input`);
        # workers wait (suspended) until Prometheus has scraped the worker once, so that
        # every counter's rise after that shows in rate()
        doomed = submit(client, photo, video).json()["id"]
        shutil.rmtree(Path(stack.storage_url.removeprefix("file://")) / "inputs" / doomed)
        suspend(stack.redis)
        worker = stack.start_worker(
            MCNET_LOG_FORMAT="json",
            MCNET_WEBHOOK_SECRET=SECRET,
            MCNET_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        )
        prometheus, prometheus_url = _prometheus(
            tmp_path, f"127.0.0.1:{internal_port}", f"127.0.0.1:{worker.metrics_port}"
        )
        wait_for(lambda: _scraped(prometheus_url), 60, "Prometheus to scrape the worker", 0.5)
        resume(stack.redis)
        assert _wait_status(client, doomed) == "failed"

        # finished, with a request id of the caller's and a webhook
        files = {
            "source": (photo.name, photo.read_bytes(), "image/png"),
            "driving": (video.name, video.read_bytes(), "video/mp4"),
        }
        answer = client.post(
            "/animate",
            files=files,
            data={"crop": "none", "webhook": hook_url, "webhook_events": "started,completed"},
            headers={"X-Request-ID": REQUEST_ID},
        )
        assert answer.status_code == 202, answer.text
        assert answer.headers["x-request-id"] == REQUEST_ID
        done = answer.json()["id"]
        assert _wait_status(client, done) == "finished"

        # a motion template of the video (the jobs from templates stay at 0: another
        # finished job would bring the failure ratio under its alert's threshold)
        made = client.post("/templates", files={"driving": files["driving"]}, data={"crop": "none"})
        assert made.status_code == 202, made.text
        template = f"/templates/{made.json()['id']}"
        wait_for(
            lambda: client.get(template).json()["status"] == "finished",
            60, "the template to be made", 0.25,
        )  # fmt: skip

        # canceled while it runs
        long_job = submit(client, photo, long_video).json()["id"]
        wait_for(
            lambda: client.get(f"/jobs/{long_job}").json()["progress"]["frames_done"] > 0,
            60, "the long job to start animating", 0.25,
        )  # fmt: skip
        assert client.delete(f"/jobs/{long_job}").status_code == 202
        assert _wait_status(client, long_job) == "canceled"

        # a worker that cannot load its model: counted in Redis, exported by the API
        failed_start = subprocess.run(
            [sys.executable, "-m", "core.cli", "worker", "--checkpoint", str(tmp_path / "no.pth")],
            env=worker_env(stack.redis_server.url, stack.storage_url, stack.queue),
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert failed_start.returncode == 2, failed_start.stderr

        # a 404, and 429s for one key over its requests per minute
        assert client.get("/jobs/00000000-0000-4000-8000-000000000000").status_code == 404
        flood = {"Authorization": "Bearer flood-key-0123456789"}
        codes = {client.get("/jobs", headers=flood).status_code for _ in range(RATE_LIMIT + 1)}
        assert 429 in codes, codes

        # the request id: in the webhook's headers, the API's and the worker's JSON lines
        wait_for(lambda: len(hooks) >= 2, 30, "the webhooks", 0.1)
        assert {h.get("x-request-id") for h in hooks} == {REQUEST_ID}, hooks
        worker_lines = _json_lines(worker.log_text())
        mine = [line for line in worker_lines if line.get("request_id") == REQUEST_ID]
        assert mine and all(line["job_id"] == done for line in mine), worker_lines[-20:]
        assert all(line["key"] == "ops" for line in mine), mine
        assert {"time", "level", "logger", "message"} <= set(mine[0])
        assert any(line.get("stage") for line in mine), mine
        api_lines = [
            line for line in _json_lines(api.text()) if line.get("request_id") == REQUEST_ID
        ]
        assert any(line.get("job_id") == done and line.get("key") == "ops" for line in api_lines)

        # both processes' metrics pass promtool
        for text in (internal.text, worker.metrics()):
            checked = subprocess.run(
                ["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                timeout=30,
            )  # fmt: skip
            assert checked.returncode == 0 and not checked.stdout.strip(), checked

        # Prometheus scraped both after the jobs ended
        def scraped() -> bool:
            up = _query(prometheus_url, 'up{job=~"mcnet-api|mcnet-worker"} == 1')
            ended = _query(prometheus_url, 'mcnet_worker_jobs_total{outcome="canceled"} > 0')
            return len(up) == 2 and bool(ended)

        wait_for(scraped, 60, "Prometheus to scrape both after the jobs", 0.5)
        time.sleep(2)  # a few more samples for rate()

        problems = []
        for title, expr in _panels():
            if not _query(prometheus_url, expr) and title not in EMPTY_PANELS:
                problems.append(f"panel {title!r}: no series for {expr}")
        for alert, expr in _alerts().items():
            fired = bool(_query(prometheus_url, expr))
            if fired != (alert in FIRING):
                problems.append(f"alert {alert}: {'fires' if fired else 'quiet'}: {expr}")
            for name in set(METRIC_NAME.findall(expr)):
                if not _query(prometheus_url, f'count({{__name__="{name}"}})'):
                    problems.append(f"alert {alert}: no metric {name}")
        assert not problems, "\n".join(problems)
    finally:
        api.stop()
        if prometheus is not None:
            prometheus.stop()


def _wait_status(client: httpx.Client, job_id: str, timeout: float = 60) -> str:
    """The job's status once it has ended (polled twice a second: under the rate limit)."""

    def ended() -> str | None:
        status: str = client.get(f"/jobs/{job_id}").json()["status"]
        return status if status in ("finished", "failed", "canceled") else None

    result: str = wait_for(ended, timeout, f"job {job_id} to end", 0.5)
    return result


def _scraped(url: str) -> bool:
    """Whether Prometheus is ready (it answers 503 while it starts) and has scraped the worker."""
    try:
        answer = httpx.get(
            f"{url}/api/v1/query", params={"query": 'up{job="mcnet-worker"} == 1'}, timeout=10
        )
    except httpx.TransportError:
        return False
    return answer.status_code == 200 and bool(answer.json()["data"]["result"])


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
