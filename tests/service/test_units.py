"""Small pieces: Range parsing, streaming upload limits, job state mapping, settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.requests import Request

from service.jobs import JobState, job_timeout, progress_of, state_of
from service.ranges import RangeNotSatisfiableError, parse_range
from service.settings import ApiSettings, WorkerSettings
from service.uploads import FormLimits, UploadError, receive_form


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=5-1", None),  # invalid: ignored, whole file
        ("bytes=0-1,5-6", None),  # several ranges: whole file
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("bytes=", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, 100)


def _request(chunks: list[bytes], consumed: list[int]) -> Request:
    messages = iter(chunks)

    async def receive() -> dict[str, object]:
        try:
            chunk = next(messages)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/animate",
        "headers": [(b"content-type", b"multipart/form-data; boundary=XX")],
    }
    return Request(scope, receive)


def test_upload_limit_is_enforced_while_reading(tmp_path: Path) -> None:
    head = b'--XX\r\nContent-Disposition: form-data; name="source"; filename="a"\r\n\r\n'
    chunks = [head] + [b"\0" * 65536] * 1000  # 64 MiB would follow
    consumed: list[int] = []
    limits = FormLimits(files={"source": 100_000, "driving": 100_000}, fields=frozenset())
    with pytest.raises(UploadError) as caught:
        asyncio.run(receive_form(_request(chunks, consumed), tmp_path, limits))
    assert caught.value.status == 413
    assert sum(consumed) < 300_000, "reading stopped soon after the limit"
    assert (tmp_path / "source").stat().st_size <= 100_000


def test_upload_of_an_unknown_field_stops_at_its_headers(tmp_path: Path) -> None:
    head = b'--XX\r\nContent-Disposition: form-data; name="../../etc/passwd"\r\n\r\n'
    consumed: list[int] = []
    limits = FormLimits(files={"source": 10, "driving": 10}, fields=frozenset({"seed"}))
    with pytest.raises(UploadError) as caught:
        asyncio.run(receive_form(_request([head, b"x" * 10] * 50, consumed), tmp_path, limits))
    assert caught.value.status == 422
    assert not any(p.name != "source" for p in tmp_path.iterdir() if p.is_file())


def test_states_and_progress() -> None:
    assert state_of("queued", {}) is JobState.QUEUED
    assert state_of("deferred", {}) is JobState.QUEUED
    assert state_of("scheduled", {}) is JobState.QUEUED
    assert state_of("started", {}) is JobState.STARTED
    assert state_of("finished", {}) is JobState.FINISHED
    assert state_of("failed", {}) is JobState.FAILED
    assert state_of("stopped", {}) is JobState.FAILED
    assert state_of("canceled", {}) is JobState.CANCELED
    assert state_of("failed", {"canceled": True}) is JobState.CANCELED
    meta = {"frames_total": 9, "progress": {"stage": "animating", "frames_done": 4}}
    assert progress_of(meta, JobState.STARTED).as_dict() == {
        "stage": "animating",
        "frames_done": 4,
        "frames_total": 9,
    }
    assert progress_of(meta, JobState.FINISHED).frames_done == 9
    assert progress_of(meta, JobState.QUEUED).stage == "queued"


def test_job_timeout_grows_with_frames() -> None:
    assert job_timeout(0, 120, 2) == 120
    assert job_timeout(1000, 120, 2) == 2120
    assert job_timeout(3, 1.5, 0.1) == 2


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/2")
    monkeypatch.setenv("STORAGE_URL", "s3://b/p")
    monkeypatch.setenv("API_KEYS", " a, b ,,c ")
    monkeypatch.setenv("MCNET_MAX_VIDEO_FRAMES", "123")
    monkeypatch.setenv("MCNET_CHECKPOINT", "/m/x.pth.tar")
    monkeypatch.setenv("MCNET_DEVICE", "cuda")
    monkeypatch.setenv("MCNET_PRECISION", "fp16")
    monkeypatch.setenv("MCNET_BATCH_SIZE", "16")
    monkeypatch.setenv("MCNET_MODEL_CONFIG", "tiny")
    monkeypatch.setenv("MCNET_COMPILE", "1")
    monkeypatch.setenv("MCNET_ENCODE_PRESET", "veryfast")
    monkeypatch.setenv("MCNET_ENCODE_CRF", "20")
    api = ApiSettings()
    assert api.redis_url == "redis://r:6379/2" and api.storage_url == "s3://b/p"
    assert api.api_keys == ["a", "b", "c"]
    assert api.media_limit_values()["max_frames"] == 123
    worker = WorkerSettings()
    assert str(worker.checkpoint) == "/m/x.pth.tar"
    assert (worker.device, worker.precision, worker.batch_size) == ("cuda", "fp16", 16)
    assert worker.net_config == "tiny"
    assert worker.compile and (worker.encode_preset, worker.encode_crf) == ("veryfast", 20)
    for name, value in (("MCNET_PRECISION", "fp8"), ("MCNET_ENCODE_PRESET", "quick")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError):
            WorkerSettings()
        monkeypatch.delenv(name)
