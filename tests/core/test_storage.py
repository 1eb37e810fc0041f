"""Storage: keys from job ids only, atomic writes, ranges, TTL expiry; file:// and s3://."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from core.storage import (
    FileStorage,
    ObjectMissingError,
    S3Storage,
    Storage,
    input_key,
    open_storage,
    result_key,
    template_key,
)


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "file":
        return open_storage((tmp_path / "store").as_uri())
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return open_storage(f"s3://{bucket}/some/prefix", s3_endpoint_url=endpoint)


def test_keys_come_from_job_ids_only() -> None:
    job_id = str(uuid.uuid4())
    assert input_key(job_id, "source") == f"inputs/{job_id}/source"
    assert result_key(job_id) == f"results/{job_id}.mp4"
    for bad in ("../../etc/passwd", "abc", job_id.upper(), job_id + "/x", "", job_id[:-1]):
        with pytest.raises(ValueError):
            result_key(bad)
    with pytest.raises(ValueError):
        input_key(job_id, "../x")  # type: ignore[arg-type]


def test_round_trip_ranges_and_delete(storage: Storage, tmp_path: Path) -> None:
    storage.check()
    job_id = str(uuid.uuid4())
    payload = os.urandom(3 * 2**20 + 17)
    local = tmp_path / "payload"
    local.write_bytes(payload)
    key = result_key(job_id)
    assert storage.size(key) is None
    storage.put_file(key, local)
    assert local.exists()
    assert storage.size(key) == len(payload)
    assert b"".join(storage.iter_range(key, 0, len(payload) - 1)) == payload
    assert b"".join(storage.iter_range(key, 10, 19)) == payload[10:20]
    back = tmp_path / "back"
    storage.get_file(key, back)
    assert back.read_bytes() == payload
    moved = tmp_path / "moved"
    moved.write_bytes(b"abc")
    storage.put_file(input_key(job_id, "source"), moved, move=True)
    assert not moved.exists()
    storage.delete(key)
    storage.delete_inputs(job_id)
    assert storage.size(key) is None and storage.size(input_key(job_id, "source")) is None
    with pytest.raises(ObjectMissingError):
        storage.get_file(key, back)
    with pytest.raises(ObjectMissingError):
        list(storage.iter_range(key, 0, 1))


def test_expiry_deletes_only_old_objects(storage: Storage, tmp_path: Path) -> None:
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    local = tmp_path / "x"
    local.write_bytes(b"x")
    storage.put_file(input_key(old, "source"), local)
    storage.put_file(result_key(old), local)
    if isinstance(storage, FileStorage):
        past = time.time() - 7200
        for key in (input_key(old, "source"), result_key(old)):
            os.utime(storage.root / key, (past, past))
        now = time.time()
    else:
        time.sleep(2.5)  # S3 times have whole seconds: old <= t - 2.5 < cutoff < new
        now = time.time() - 0.5  # cutoff = now - ttl = t - 1.5
    storage.put_file(input_key(new, "source"), local)
    storage.put_file(result_key(new), local)
    assert storage.expire_all(input_ttl=1, result_ttl=1, template_ttl=1, now=now) == 2
    assert storage.size(input_key(old, "source")) is None and storage.size(result_key(old)) is None
    assert storage.size(input_key(new, "source")) == 1 and storage.size(result_key(new)) == 1


def test_templates_expire_by_their_own_ttl(storage: Storage, tmp_path: Path) -> None:
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    local = tmp_path / "x"
    local.write_bytes(b"x")
    storage.put_file(template_key(old), local)
    if isinstance(storage, FileStorage):
        past = time.time() - 7200
        os.utime(storage.root / template_key(old), (past, past))
        now = time.time()
    else:
        time.sleep(2.5)  # S3 times have whole seconds
        now = time.time() - 0.5
    storage.put_file(template_key(new), local)
    assert storage.expire_all(input_ttl=1, result_ttl=1, template_ttl=9999, now=now) == 0, (
        "within its TTL: kept"
    )
    assert storage.expire_all(input_ttl=1, result_ttl=1, template_ttl=1, now=now) == 1
    assert storage.size(template_key(old)) is None and storage.size(template_key(new)) == 1
    assert template_key(new) == f"templates/{new}/motion.mcnet"


def test_file_writes_are_atomic(tmp_path: Path) -> None:
    store = FileStorage(tmp_path / "store")
    job_id = str(uuid.uuid4())
    local = tmp_path / "x"
    local.write_bytes(b"1" * 1000)
    store.put_file(result_key(job_id), local)
    leftovers = [p.name for p in (tmp_path / "store" / "results").iterdir()]
    assert leftovers == [f"{job_id}.mp4"], "no temporary files are left behind"


def test_storage_urls(tmp_path: Path) -> None:
    assert isinstance(open_storage("file:///data"), FileStorage)
    assert open_storage(str(tmp_path)).root == tmp_path  # type: ignore[attr-defined]
    s3 = open_storage("s3://bucket/a/b", s3_endpoint_url="http://127.0.0.1:1")
    assert isinstance(s3, S3Storage) and s3.bucket == "bucket" and s3.prefix == "a/b/"
    for bad in ("ftp://x/y", "s3:///nobucket", "file://"):
        with pytest.raises(ValueError):
            open_storage(bad)
