"""The service with s3:// storage against a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

from pathlib import Path

import boto3

from tests.conftest import S3_ENV
from tests.media_factory import probe_output
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_status


def test_s3_round_trip(stack: Stack, tmp_path: Path, moto_endpoint: str, s3_bucket: str) -> None:
    stack.storage_url = f"s3://{s3_bucket}/mcnet"
    stack.extra_settings = {"s3_endpoint_url": moto_endpoint}
    stack.extra_env = {"MCNET_S3_ENDPOINT_URL": moto_endpoint, **S3_ENV}
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=3)
    client_s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        final = wait_status(client, job_id, timeout=90)
        assert final["status"] == "finished", final
        whole = client.get(f"/jobs/{job_id}/result")
        assert whole.status_code == 200
        part = client.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=4-11"})
        assert part.status_code == 206 and part.content == whole.content[4:12]
        assert part.content[:4] == b"ftyp"
    listed = client_s3.list_objects_v2(Bucket=s3_bucket)
    keys = sorted(item["Key"] for item in listed.get("Contents", []))
    assert keys == [f"mcnet/results/{job_id}.mp4"], "inputs are deleted, the result is stored"
    stored = client_s3.get_object(Bucket=s3_bucket, Key=keys[0])["Body"].read()
    assert stored == whole.content
    mp4 = tmp_path / "result.mp4"
    mp4.write_bytes(stored)
    assert probe_output(mp4).frames == 3
