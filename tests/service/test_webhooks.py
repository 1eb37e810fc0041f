"""Webhooks from a real worker to a real HTTP receiver on loopback that checks signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_for, wait_status

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
LOOPBACK = "127.0.0.0/8"


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (the README's snippet): recompute the signature, compare in
    constant time, refuse old timestamps."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, part.removeprefix("v1,"))
        for part in headers["webhook-signature"].split()
        if part.startswith("v1,")
    )


class Receiver:
    """An HTTP server on loopback recording each POST; answers 503 to the first
    `fail_completed` deliveries of a finished job."""

    def __init__(self, fail_completed: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_completed = fail_completed
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                document = json.loads(body)
                status = 204
                if document["status"] == "finished" and receiver.fail_completed > 0:
                    receiver.fail_completed -= 1
                    status = 503
                receiver.calls.append(
                    {"headers": headers, "body": body, "json": document, "status": status}
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/mcnet?x=1"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _metric(text: str, event: str, outcome: str) -> float:
    pattern = rf'^mcnet_worker_webhooks_total\{{event="{event}",outcome="{outcome}"\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_signed_webhooks_follow_a_job_and_failed_deliveries_are_retried(
    stack: Stack, tmp_path: Path
) -> None:
    stack.extra_env = {
        "MCNET_WEBHOOK_SECRET": SECRET,
        "MCNET_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK,
        "MCNET_WEBHOOK_BACKOFF": "0.2",
        "MCNET_WEBHOOK_PROGRESS_INTERVAL": "0.1",
    }
    worker = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=12)
    with (
        Receiver(fail_completed=2) as receiver,
        stack.api(webhook_secret=SECRET, webhook_allowed_networks=[LOOPBACK]) as client,
    ):
        answer = submit(
            client,
            source,
            driving,
            webhook=receiver.url,
            webhook_events="started,progress,completed",
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        assert wait_status(client, job_id, timeout=90)["status"] == "finished"
        wait_for(
            lambda: any(c["status"] == 204 and c["json"]["status"] == "finished"
                        for c in receiver.calls),
            30,
            "the completed webhook",
        )  # fmt: skip
        job = client.get(f"/jobs/{job_id}").json()

    calls = receiver.calls
    assert all(verify(SECRET, c["headers"], c["body"]) for c in calls)
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    assert not any(verify(other, c["headers"], c["body"]) for c in calls)
    assert all(c["headers"]["content-type"] == "application/json" for c in calls)
    assert all(c["json"]["id"] == job_id for c in calls)
    statuses = [c["json"]["status"] for c in calls]
    assert statuses[0] == "started" and statuses[-3:] == ["finished"] * 3, statuses
    assert set(statuses) == {"started", "finished"}
    assert len(calls) >= 4, "started, at least one progress, and the completed tries"
    completed = calls[-3:]
    assert [c["status"] for c in completed] == [503, 503, 204]
    assert len({c["headers"]["webhook-id"] for c in completed}) == 1, "one message, retried"
    assert len({c["headers"]["webhook-id"] for c in calls}) == len(calls) - 2
    expected = {k: v for k, v in job.items() if k != "links"}
    assert job["result_url"] == f"/jobs/{job_id}/result"
    assert completed[-1]["json"] == {**expected, "type": "job.completed"}
    types = [c["json"]["type"] for c in calls]
    assert types[0] == "job.started" and types[-3:] == ["job.completed"] * 3, types
    assert set(types[1:-3]) == {"job.progress"}, types
    assert all(c["json"]["result_url"] is None for c in calls[:-3])
    metrics = worker.metrics()
    assert _metric(metrics, "completed", "retried") == 2
    assert _metric(metrics, "completed", "delivered") == 1
    assert _metric(metrics, "started", "delivered") == 1
    assert _metric(metrics, "progress", "delivered") == len(calls) - 4


def test_webhooks_to_addresses_not_allowed_are_refused(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with Receiver() as receiver:
        with stack.api() as client:  # no secret: no webhooks
            answer = submit(client, source, driving, webhook=receiver.url)
            assert answer.status_code == 422 and "no webhooks" in answer.json()["detail"]
        with stack.api(webhook_secret=SECRET) as client:
            for fields in (
                {"webhook": receiver.url},  # loopback, not allowed by default
                {"webhook": "http://169.254.169.254/latest/meta-data"},
                {"webhook": "http://10.1.2.3/hook"},
                {"webhook": "ftp://example.com/hook"},
                {"webhook": "http://user:pw@example.com/hook"},
                {"webhook_events": "completed"},
                {"webhook": "https://example.com/hook", "webhook_events": "started,finished"},
            ):
                answer = submit(client, source, driving, **fields)
                assert answer.status_code == 422, (fields, answer.text)
                assert answer.json()["detail"].startswith("Invalid options"), answer.text
        # The API allows loopback, the worker does not: the worker checks again and refuses.
        stack.extra_env = {"MCNET_WEBHOOK_SECRET": SECRET}
        worker = stack.start_worker()
        settings = {"webhook_secret": SECRET, "webhook_allowed_networks": [LOOPBACK]}
        with stack.api(**settings) as client:
            job_id = submit(client, source, driving, webhook=receiver.url).json()["id"]
            assert wait_status(client, job_id, timeout=90)["status"] == "finished"
            wait_for(lambda: _metric(worker.metrics(), "completed", "refused") == 1, 20, "refusal")
        assert receiver.calls == []


@pytest.mark.parametrize("secret", ["plain-text", "whsec_c2hvcnQ=", "whsec_!!!"])
def test_a_malformed_secret_is_refused(stack: Stack, secret: str) -> None:
    with pytest.raises(ValueError):
        stack.settings(webhook_secret=secret)


def test_a_job_canceled_while_queued_sends_its_webhook(stack: Stack, tmp_path: Path) -> None:
    stack.extra_env = {
        "MCNET_WEBHOOK_SECRET": SECRET,
        "MCNET_WEBHOOK_ALLOWED_NETWORKS": LOOPBACK,
    }
    source, driving = make_inputs(tmp_path, frames=2)
    settings = {"webhook_secret": SECRET, "webhook_allowed_networks": [LOOPBACK]}
    with Receiver() as receiver, stack.api(**settings) as client:
        job_id = submit(client, source, driving, webhook=receiver.url).json()["id"]
        canceled = client.delete(f"/jobs/{job_id}")
        assert canceled.status_code == 202 and canceled.json()["status"] == "canceled"
        stack.start_worker()  # no worker ran the job; one sends its webhook
        wait_for(lambda: receiver.calls, 30, "the canceled job's webhook")
        time.sleep(2)  # no second message
        job = client.get(f"/jobs/{job_id}").json()
    assert len(receiver.calls) == 1, receiver.calls
    call = receiver.calls[0]
    assert verify(SECRET, call["headers"], call["body"])
    expected = {k: v for k, v in job.items() if k != "links"}
    assert call["json"] == {**expected, "type": "job.canceled"}


@pytest.mark.parametrize("port", ["99999", "65536", "abc", "-1", "0"])
def test_a_webhook_url_with_an_invalid_port_is_refused_naming_the_field(
    stack: Stack, tmp_path: Path, port: str
) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(webhook_secret=SECRET) as client:
        answer = submit(client, source, driving, webhook=f"https://example.com:{port}/hook")
        assert answer.status_code == 422, answer.text
        assert "webhook" in answer.json()["detail"] and "port" in answer.json()["detail"]
        assert client.get("/healthz").status_code == 200, "the connection still serves"


@pytest.mark.parametrize(
    "url",
    [
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://100.100.100.200/latest/meta-data",  # a cloud metadata address in it
        "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/hook",  # 6to4 of 169.254.169.254
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "http://[fec0::1]/hook",  # site-local
        "http://192.88.99.1/hook",  # 6to4 relay anycast
    ],
)
def test_webhooks_only_to_globally_routable_addresses(
    stack: Stack, tmp_path: Path, url: str
) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(webhook_secret=SECRET) as client:
        answer = submit(client, source, driving, webhook=url)
        assert answer.status_code == 422, answer.text
        assert "does not call" in answer.json()["detail"]
