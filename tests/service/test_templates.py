"""Motion templates through the API and real workers: made from an uploaded video, listed,
animating photos to the video job's very pixels, owned by one key, refused where they
cannot be used, deleted without breaking a queued job, limited per key, expired."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from core.storage import FileStorage, input_key, template_key
from core.template_format import SIDE_BY_SIDE_NEEDS_VIDEO, is_template
from tests.media_factory import (
    Audio,
    decode_all,
    face_image,
    pattern_frame,
    probe_output,
    talking_face_frames,
    write_image,
    write_video,
)
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_for, wait_status

FRAMES = 6
ENDED = ("finished", "failed", "canceled")


@pytest.fixture
def talking(tmp_path: Path) -> Path:
    """A talking face with sound (crop=auto finds it)."""
    return write_video(tmp_path / "talking.mp4", talking_face_frames(FRAMES), audio=Audio())


def _photo(folder: Path, name: str, cx: float) -> Path:
    return write_image(folder / name, face_image(200, 160, cx, 78, 40))


def create(client: httpx.Client, video: Path, **fields: str) -> httpx.Response:
    """POST /templates with the video as `driving`."""
    files = {"driving": (video.name, video.read_bytes(), "application/octet-stream")}
    return client.post("/templates", files=files, data=fields)


def from_template(
    client: httpx.Client, source: Path, template_id: str, **options: str
) -> httpx.Response:
    """POST /animate with the photo and `template` instead of a driving video."""
    files = {"source": (source.name, source.read_bytes(), "application/octet-stream")}
    return client.post("/animate", files=files, data={"template": template_id, **options})


def wait_template(
    client: httpx.Client, template_id: str, statuses: tuple[str, ...] = ENDED, timeout: float = 90
) -> dict[str, Any]:
    """Poll GET /templates/{id} until its status is one of `statuses`."""

    def check() -> dict[str, Any] | None:
        answer = client.get(f"/templates/{template_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body if body["status"] in statuses else None

    found: dict[str, Any] = wait_for(check, timeout, f"template {template_id}", 0.05)
    return found


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


def test_a_template_animates_photos_to_the_video_jobs_pixels(
    stack: Stack, tmp_path: Path, talking: Path
) -> None:
    worker = stack.start_worker()
    store = FileStorage(tmp_path / "store")
    first, second = _photo(tmp_path, "a.png", 100), _photo(tmp_path, "b.png", 90)
    with stack.api() as client:
        answer = create(client, talking)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        template_id = body["id"]
        assert body["status"] == "queued" and body["frames"] == FRAMES
        assert body["fps"] == 25 and body["bytes"] is None and body["has_audio"] is None
        assert answer.headers["location"] == f"/templates/{template_id}"
        assert body["links"] == {"self": f"/templates/{template_id}"}

        made = wait_template(client, template_id)
        assert made["status"] == "finished", made
        assert made["progress"] == {"stage": "done", "frames_done": FRAMES, "frames_total": FRAMES}
        assert made["has_audio"] is True and made["error"] is None
        assert made["duration_seconds"] == pytest.approx(FRAMES / 25)
        stored = store.size(template_key(template_id))
        assert made["bytes"] == stored and stored is not None and stored > 0
        assert made["created_at"] and made["ended_at"] and made["expires_at"]
        # the uploaded video is removed once the template is made
        wait_for(
            lambda: store.size(input_key(template_id, "driving")) is None, 10, "the upload removed"
        )
        listed = client.get("/templates").json()["templates"]
        assert [t["id"] for t in listed] == [template_id] and listed[0] == made
        # not an animation job: neither listed nor shown as one, nor rendered frames
        assert client.get("/jobs").json()["jobs"] == []
        assert client.get(f"/jobs/{template_id}").status_code == 404
        assert client.get(f"/jobs/{template_id}/events").status_code == 404
        worker_metrics = worker.metrics()
        assert _metric(worker_metrics, "mcnet_worker_frames_animated_total") == 0
        assert _metric(worker_metrics, 'mcnet_worker_jobs_total{outcome="finished"}') == 1

        video_job = submit(client, first, talking, crop="auto", seed="7").json()["id"]
        jobs = [
            from_template(client, photo, template_id, seed="7").json()["id"]
            for photo in (first, second)
        ]
        for job_id in (video_job, *jobs):
            final = wait_status(client, job_id, timeout=120)
            assert final["status"] == "finished", final
            assert final["template"] == (None if job_id == video_job else template_id)
            assert final["progress"]["frames_total"] == FRAMES
            (tmp_path / f"{job_id}.mp4").write_bytes(client.get(f"/jobs/{job_id}/result").content)
        from_video = decode_all(tmp_path / f"{video_job}.mp4")
        same = decode_all(tmp_path / f"{jobs[0]}.mp4")
        assert len(from_video) == len(same) == FRAMES
        for a, b in zip(from_video, same, strict=True):
            np.testing.assert_array_equal(a, b)
        assert probe_output(tmp_path / f"{jobs[1]}.mp4").audio_codec == "aac"
        other = decode_all(tmp_path / f"{jobs[1]}.mp4")
        assert not np.array_equal(other[0], same[0]), "another photo, another result"

        metrics = client.get("/metrics").text
        assert _metric(metrics, 'mcnet_templates_created_total{outcome="finished"}') == 1
        assert _metric(metrics, "mcnet_template_jobs_total") == 2
        assert _metric(metrics, "mcnet_template_bytes") == stored
        assert _metric(metrics, "mcnet_jobs_submitted_total") == 3


def test_templates_belong_to_their_key_and_are_refused_where_unusable(
    stack: Stack, tmp_path: Path, talking: Path
) -> None:
    photo = _photo(tmp_path, "a.png", 100)
    source, driving = make_inputs(tmp_path, frames=3)
    mine, theirs = {"Authorization": "Bearer ka"}, {"Authorization": "Bearer kb"}
    with stack.api(api_keys=["a:ka", "b:kb"]) as client:
        client.headers.update(mine)
        first = client.post(
            "/templates",
            files={"driving": ("t.mp4", talking.read_bytes(), "video/mp4")},
            headers={"Idempotency-Key": "once"},
        )
        assert first.status_code == 202, first.text
        template_id = first.json()["id"]
        again = client.post(
            "/templates",
            files={"driving": ("t.mp4", talking.read_bytes(), "video/mp4")},
            headers={"Idempotency-Key": "once"},
        )
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == template_id
        other = client.post(
            "/templates",
            files={"driving": ("t.mp4", talking.read_bytes(), "video/mp4")},
            data={"crop": "none"},
            headers={"Idempotency-Key": "once"},
        )
        assert other.status_code == 422, "the same key for another request"
        # no worker yet: the template is still being made
        answer = from_template(client, photo, template_id)
        assert answer.status_code == 409 and "still being made" in answer.json()["detail"]
        assert answer.headers["retry-after"] == "5"
        answer = from_template(client, photo, template_id, layout="side_by_side")
        assert answer.status_code == 422 and answer.json()["detail"] == SIDE_BY_SIDE_NEEDS_VIDEO
        files = {
            "source": ("s.png", source.read_bytes(), "image/png"),
            "driving": ("d.mp4", driving.read_bytes(), "video/mp4"),
        }
        both = client.post("/animate", files=files, data={"template": template_id})
        assert both.status_code == 422 and "not both" in both.json()["detail"]
        neither = client.post("/animate", files={"source": files["source"]})
        assert neither.status_code == 422 and "driving" in neither.json()["detail"]
        assert create(client, driving, crop="sideways").status_code == 422
        assert client.post("/templates", files={"video": files["driving"]}).status_code == 422
        noise = write_video(tmp_path / "noise.mp4", lambda i: pattern_frame(i, 96, 96), count=4)
        no_face = create(client, noise)
        assert no_face.status_code == 422 and "No face" in no_face.json()["detail"]
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(b"not a video at all" * 100)
        assert create(client, bad).status_code == 415

        # another key sees none of it
        client.headers.update(theirs)
        assert client.get(f"/templates/{template_id}").status_code == 404
        assert client.delete(f"/templates/{template_id}").status_code == 404
        assert client.get("/templates").json() == {"templates": []}
        answer = from_template(client, photo, template_id)
        assert answer.status_code == 404 and template_id in answer.json()["detail"]
        assert from_template(client, photo, "not-an-id").status_code == 404

        client.headers.update(mine)
        queued = client.get(f"/templates/{template_id}").json()
        assert queued["status"] == "queued" and queued["progress"]["stage"] == "queued"
        assert stack.jobs().depth() == 1, "the extraction waits in the jobs' queue"
        # deleting a queued template cancels its extraction and removes its upload
        assert client.delete(f"/templates/{template_id}").status_code == 204
        assert client.get(f"/templates/{template_id}").status_code == 404
        store = FileStorage(tmp_path / "store")
        assert store.size(input_key(template_id, "driving")) is None
        assert client.delete(f"/templates/{template_id}").status_code == 404

        # a template whose extraction fails shows why, and refuses jobs with it
        failing = create(client, talking).json()["id"]
        store.put_file(input_key(failing, "driving"), noise)  # no face, after the checks
        stack.start_worker()
        failed = wait_template(client, failing)
        assert failed["status"] == "failed", failed
        assert failed["error"].startswith("No face was found in the driving video"), failed
        answer = from_template(client, photo, failing)
        assert answer.status_code == 409 and "failed" in answer.json()["detail"]
        metrics = client.get("/metrics").text
        assert _metric(metrics, 'mcnet_templates_created_total{outcome="failed"}') == 1


def test_deleting_a_template_spares_queued_jobs_and_frees_the_keys_quota(
    stack: Stack, tmp_path: Path, talking: Path
) -> None:
    photo = _photo(tmp_path, "a.png", 100)
    store = FileStorage(tmp_path / "store")
    worker = stack.start_worker()
    with stack.api(template_storage_per_key=1) as client:
        template_id = create(client, talking).json()["id"]
        made = wait_template(client, template_id)
        assert made["status"] == "finished", made
        # at its quota, the key makes no more templates until it deletes one
        refused = create(client, talking)
        assert refused.status_code == 429, refused.text
        assert "DELETE /templates/" in refused.json()["detail"]
        assert 0 < int(refused.headers["retry-after"]) <= 7 * 24 * 3600
        metrics = client.get("/metrics").text
        assert 'reason="template_storage"' in metrics

        worker.stop()
        job_id = from_template(client, photo, template_id, seed="3").json()["id"]
        assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"
        assert client.delete(f"/templates/{template_id}").status_code == 204
        assert store.size(template_key(template_id)) is None
        assert client.get(f"/templates/{template_id}").status_code == 404
        stack.start_worker()
        final = wait_status(client, job_id, timeout=120)
        assert final["status"] == "finished" and final["template"] == template_id, final
        assert create(client, talking).status_code == 202, "the quota is free again"


def test_a_template_expires_after_its_ttl(stack: Stack, tmp_path: Path, talking: Path) -> None:
    ttl = 4
    stack.start_worker(MCNET_TEMPLATE_TTL=str(ttl))
    store = FileStorage(tmp_path / "store")
    with stack.api(template_ttl=ttl) as client:
        template_id = create(client, talking, crop="none").json()["id"]
        made = wait_template(client, template_id)
        assert made["status"] == "finished", made
        path = store.root / template_key(template_id)
        assert is_template(path)
        assert stack.redis.ttl(f"mcnet:template:{stack.queue}:{template_id}") <= ttl
        started = time.monotonic()
        wait_for(lambda: client.get(f"/templates/{template_id}").status_code == 404, 30, "expiry")
        assert time.monotonic() - started >= ttl - 2
        assert client.get("/templates").json() == {"templates": []}
        # the worker's maintenance deletes the file (MCNET_MAINTENANCE_INTERVAL: 2 s)
        wait_for(lambda: not path.exists(), 30, "the template's file expired")
        assert _metric(client.get("/metrics").text, "mcnet_template_bytes") == 0
        assert not os.path.exists(store.root / "inputs" / template_id)


def test_deleting_a_template_being_made_stops_its_extraction(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    store = FileStorage(tmp_path / "store")
    _, long_video = make_inputs(tmp_path, frames=400)
    with stack.api() as client:
        template_id = create(client, long_video, crop="none").json()["id"]
        running = wait_template(client, template_id, ("started", *ENDED))
        assert running["status"] == "started", running
        assert client.delete(f"/templates/{template_id}").status_code == 204
        assert client.get(f"/templates/{template_id}").status_code == 404

        def canceled() -> float:
            text = client.get("/metrics").text
            return _metric(text, 'mcnet_templates_created_total{outcome="canceled"}')

        wait_for(canceled, 60, "the extraction to stop")
        metrics = client.get("/metrics").text
        assert _metric(metrics, 'mcnet_templates_created_total{outcome="finished"}') == 0
        assert store.size(template_key(template_id)) is None
        assert store.size(input_key(template_id, "driving")) is None
        assert client.get("/templates").json() == {"templates": []}
