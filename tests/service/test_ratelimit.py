"""Per-key limits: requests per minute and jobs at once, answered 429 with Retry-After."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit

KEYS = ["shop:k-shop", "batch:k-batch"]


def test_requests_per_minute_per_key(stack: Stack) -> None:
    limit = 5
    with stack.api(api_keys=KEYS, rate_limit_per_minute=limit) as client:
        client.headers["Authorization"] = "Bearer k-shop"
        answers = []
        # A fixed one-minute window: of 2 * limit + 1 requests, one window gets > limit.
        for _ in range(2 * limit + 1):
            answers.append(client.get("/jobs"))
            if answers[-1].status_code == 429:
                break
        refused = answers[-1]
        assert refused.status_code == 429, [a.status_code for a in answers]
        assert limit <= len(answers) - 1 <= 2 * limit
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "5 per minute" in refused.json()["detail"]
        assert client.get("/healthz").status_code == 200  # health is never limited
        client.headers["Authorization"] = "Bearer k-batch"
        assert client.get("/jobs").status_code == 200  # each key has its own budget
        metrics = client.get("/metrics").text
    assert 'mcnet_rate_limited_total{key="shop",reason="requests"} 1.0' in metrics
    assert "k-shop" not in metrics


def test_jobs_at_once_per_key(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(api_keys=KEYS, max_concurrent_jobs=2) as client:
        client.headers["Authorization"] = "Bearer k-shop"
        first, second = (submit(client, source, driving).json()["id"] for _ in range(2))
        third = submit(client, source, driving)
        assert third.status_code == 429 and third.headers["retry-after"] == "10"
        assert "2 job(s) queued or running" in third.json()["detail"]
        client.headers["Authorization"] = "Bearer k-batch"
        assert submit(client, source, driving).status_code == 202
        client.headers["Authorization"] = "Bearer k-shop"
        assert client.delete(f"/jobs/{first}").status_code == 202  # one ended: room again
        assert submit(client, source, driving).status_code == 202
        assert submit(client, source, driving).status_code == 429
        metrics = client.get("/metrics").text
        jobs = client.get("/jobs").json()["jobs"]
    assert 'mcnet_rate_limited_total{key="shop",reason="concurrent_jobs"} 2.0' in metrics
    assert 'mcnet_jobs_submitted_by_key_total{key="shop"} 3.0' in metrics
    assert 'mcnet_jobs_submitted_by_key_total{key="batch"} 1.0' in metrics
    assert len(jobs) == 3 and second in {job["id"] for job in jobs}


def test_a_retried_submit_gets_its_job_even_at_the_limit(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(api_keys=KEYS, max_concurrent_jobs=1) as client:
        client.headers["Authorization"] = "Bearer k-shop"

        def post(key: str) -> httpx.Response:
            files = {"source": source.read_bytes(), "driving": driving.read_bytes()}
            return client.post(
                "/animate", files=files, data={"crop": "none"}, headers={"Idempotency-Key": key}
            )

        first = post("order-1")
        assert first.status_code == 202
        again = post("order-1")
        assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
        assert post("order-2").status_code == 429
