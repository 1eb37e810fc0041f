"""Limits for hostile or greedy clients: operator pages behind the key, the queue cap and
the per-key frame budget (429 with Retry-After)."""

from __future__ import annotations

from pathlib import Path

from core.keys import parse_api_keys
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit

GATED = ("/metrics", "/docs", "/redoc", "/openapi.json")


def test_operator_pages_need_the_key_when_keys_are_on(stack: Stack) -> None:
    with stack.api(api_keys=["k1"]) as client:
        for path in GATED:
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer k1"}).status_code == 200
        assert client.get("/healthz").status_code == 200
    with stack.api(api_keys=["k1"], metrics_public=True, docs_public=True) as client:
        for path in GATED:
            assert client.get(path).status_code == 200, path


def test_queue_cap(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(max_queued_jobs=1) as client:
        assert submit(client, source, driving).status_code == 202
        refused = submit(client, source, driving)
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] and "queue is full" in refused.json()["detail"]
        metrics = client.get("/metrics").text
    assert 'mcnet_rate_limited_total{key="anonymous",reason="queue_full"} 1.0' in metrics


def test_frame_budget_per_key(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(api_keys=["k1", "k2"], max_frames_per_key=3) as client:
        client.headers["Authorization"] = "Bearer k1"
        assert submit(client, source, driving).status_code == 202
        refused = submit(client, source, driving)
        assert refused.status_code == 429 and "budget" in refused.json()["detail"]
        client.headers["Authorization"] = "Bearer k2"
        assert submit(client, source, driving).status_code == 202
        metrics = client.get("/metrics").text
    name = parse_api_keys(["k1"])[0].name
    assert f'mcnet_rate_limited_total{{key="{name}",reason="frame_budget"}} 1.0' in metrics
