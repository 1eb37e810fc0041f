"""GET /jobs/{id}/result hands an S3 result off with a presigned URL (real S3 API server)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import S3_ENV
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_status


def test_s3_result_is_a_redirect_to_a_presigned_url(
    stack: Stack, tmp_path: Path, moto_endpoint: str, s3_bucket: str
) -> None:
    stack.storage_url = f"s3://{s3_bucket}/mcnet"
    stack.extra_settings = {"s3_endpoint_url": moto_endpoint}
    stack.extra_env = {"MCNET_S3_ENDPOINT_URL": moto_endpoint, **S3_ENV}
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=3)
    with stack.api(api_keys=["shop:k-shop", "other:k-other"]) as client:
        client.headers["Authorization"] = "Bearer k-shop"
        job_id = submit(client, source, driving).json()["id"]
        assert wait_status(client, job_id, timeout=90)["status"] == "finished"
        streamed = client.get(f"/jobs/{job_id}/result")
        assert streamed.status_code == 200  # redirect off: the API streams
    with stack.api(
        api_keys=["shop:k-shop", "other:k-other"], result_redirect=True, result_url_ttl=60
    ) as client:
        client.headers["Authorization"] = "Bearer k-other"
        assert client.get(f"/jobs/{job_id}/result").status_code == 404  # not its job
        client.headers["Authorization"] = "Bearer k-shop"
        answer = client.get(f"/jobs/{job_id}/result")
        assert answer.status_code == 307 and answer.headers["cache-control"] == "no-store"
        location = answer.headers["location"]
        assert location.startswith(f"{moto_endpoint}/{s3_bucket}/mcnet/results/{job_id}.mp4?")
        query = parse_qs(urlsplit(location).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"], location  # SigV4, not SigV2
        assert query["X-Amz-Expires"] == ["60"] and "X-Amz-Signature" in query
    # The presigned URL needs no credentials, serves the MP4 and byte ranges.
    whole = httpx.get(location, timeout=30)
    assert whole.status_code == 200 and whole.content == streamed.content
    assert whole.headers["content-type"] == "video/mp4"
    part = httpx.get(location, headers={"Range": "bytes=4-11"}, timeout=30)
    assert part.status_code == 206 and part.content == streamed.content[4:12]
    tampered = location.replace("results/", "inputs/")
    assert httpx.get(tampered, timeout=30).status_code == 403


def test_file_results_are_streamed_even_with_redirects_on(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api(result_redirect=True) as client:
        job_id = submit(client, source, driving).json()["id"]
        assert wait_status(client, job_id, timeout=90)["status"] == "finished"
        part = client.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=4-11"})
        assert part.status_code == 206 and part.content[:4] == b"ftyp"
