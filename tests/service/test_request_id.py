"""X-Request-ID: taken from the request when sane, made otherwise, always answered, and
stored with the job a submit makes (the worker's log lines and webhooks carry it: see
tests/service/test_monitoring.py)."""

from __future__ import annotations

from pathlib import Path

from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit


def test_request_id_is_answered_and_stored_with_the_job(stack: Stack, tmp_path: Path) -> None:
    photo, video = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        given = client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
        assert given.headers["x-request-id"] == "abc-123.x"
        made = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        assert made.headers["x-request-id"] != "bad id\twith spaces"
        assert len(made.headers["x-request-id"]) == 32
        other = client.get("/healthz").headers["x-request-id"]
        assert other != made.headers["x-request-id"]
        assert client.get("/jobs/nope").headers["x-request-id"]  # errors too
        answer = submit(client, photo, video)
        assert answer.status_code == 202, answer.text
    job = stack.jobs().fetch(answer.json()["id"])
    assert job is not None and job.meta["request_id"] == answer.headers["x-request-id"]
