"""Through the API and a real worker: a job from upload to a playable MP4; cancel; SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from core.protocol import Stage
from core.storage import FileStorage, input_key
from tests.media_factory import face_image, probe_output, write_image, write_video
from tests.service.conftest import Stack
from tests.service.helpers import make_inputs, submit, wait_for, wait_status

STATES = ("queued", "started", "finished")


def _progress_key(body: dict[str, Any]) -> tuple[int, int, int]:
    progress = body["progress"]
    return (
        STATES.index(body["status"]),
        Stage(progress["stage"]).order,
        progress["frames_done"],
    )


def test_round_trip_ends_in_a_playable_mp4(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=4)
    with stack.api() as client:
        answer = submit(client, source, driving, seed="7")
        assert answer.status_code == 202, answer.text
        body = answer.json()
        job_id = body["id"]
        assert body["status"] == "queued"
        assert answer.headers["location"] == f"/jobs/{job_id}"
        assert body["links"]["result"] == f"/jobs/{job_id}/result"

        seen: list[dict[str, Any]] = []
        final = wait_status(client, job_id, timeout=90, seen=seen)
        assert final["status"] == "finished", final
        assert final["error"] is None and final["warnings"] == []
        assert final["result_url"] == f"/jobs/{job_id}/result"
        assert final["progress"] == {"stage": "done", "frames_done": 4, "frames_total": 4}
        assert final["options"]["seed"] == 7 and final["options"]["crop"] == "none"
        assert final["precision"] == "fp32"  # the worker's, part of the result's contract
        assert final["options"]["paste_back"] is False, "defaults are filled in"
        assert final["created_at"] and final["started_at"] and final["ended_at"]
        assert final["model"] == "demo" and final["queue_position"] is None
        keys = [_progress_key(b) for b in seen]
        assert keys == sorted(keys), "progress went backwards"
        assert all(b["progress"]["frames_total"] in (0, 4) for b in seen)

        result = client.get(f"/jobs/{job_id}/result")
        assert result.status_code == 200
        assert result.headers["content-type"] == "video/mp4"
        assert result.headers["accept-ranges"] == "bytes"
        mp4 = tmp_path / "result.mp4"
        mp4.write_bytes(result.content)
        probed = probe_output(mp4)
        assert probed.frames == 4
        assert (probed.width, probed.height) == (256, 256)
        assert probed.video_codec == "h264"
        with av.open(str(mp4)) as container:  # which model made it
            assert "untrained demo weights" in container.metadata["comment"]

        part = client.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(result.content)}"
        assert part.content == result.content[100:200]
        tail = client.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == result.content[-10:]
        past = client.get(f"/jobs/{job_id}/result", headers={"Range": "bytes=99999999-"})
        assert past.status_code == 416 and "detail" in past.json()
        head = client.head(f"/jobs/{job_id}/result")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(result.content))

        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["models"] == ["demo"] and ready.json()["demo"] is True
        metrics = client.get("/metrics").text
        assert "mcnet_jobs_submitted_total 1.0" in metrics
        assert 'mcnet_jobs{status="finished"} 1.0' in metrics
        assert "mcnet_queue_depth 0.0" in metrics
        assert 'route="/animate",status="202"' in metrics

    worker_metrics = stack.workers[0].metrics()
    assert "mcnet_worker_frames_animated_total 4.0" in worker_metrics
    assert 'mcnet_worker_jobs_total{outcome="finished"} 1.0' in worker_metrics
    assert "mcnet_worker_model_load_seconds" in worker_metrics
    assert "mcnet_worker_busy 0.0" in worker_metrics
    storage = FileStorage(Path(stack.folder / "store"))
    assert storage.size(input_key(job_id, "source")) is None, "inputs are deleted once done"


def test_cancel_of_a_queued_job(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        queued = submit(client, source, driving).json()["id"]
        second = submit(client, source, driving).json()["id"]
        assert client.get(f"/jobs/{queued}").json()["queue_position"] == 1
        assert client.get(f"/jobs/{second}").json()["queue_position"] == 2
        canceled = client.delete(f"/jobs/{queued}")
        assert canceled.status_code == 202
        assert canceled.json()["status"] == "canceled"
        assert canceled.json()["ended_at"] is not None and canceled.json()["queue_position"] is None
        assert client.get(f"/jobs/{second}").json()["queue_position"] == 1
        again = client.delete(f"/jobs/{queued}")
        assert again.status_code == 409 and "canceled" in again.json()["detail"]
        assert client.delete(f"/jobs/{second}").status_code == 202

        stack.start_worker()
        later = submit(client, source, driving).json()["id"]
        assert wait_status(client, later, timeout=60)["status"] == "finished"
        body = client.get(f"/jobs/{queued}").json()
        assert body["status"] == "canceled"
        assert body["started_at"] is None, "a canceled queued job never runs"
        result = client.get(f"/jobs/{queued}/result")
        assert result.status_code == 409 and "canceled" in result.json()["detail"]
        finished = client.delete(f"/jobs/{later}")
        assert finished.status_code == 409 and "finished" in finished.json()["detail"]


def test_cancel_of_a_running_job(stack: Stack, tmp_path: Path) -> None:
    worker = stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=60)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        seen: list[dict[str, Any]] = []
        try:
            wait_status(client, job_id, ("started",), timeout=60, seen=seen)
            wait_for(
                lambda: client.get(f"/jobs/{job_id}").json()["progress"]["stage"] == "animating",
                60,
                "the job to animate",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{seen[-3:]}\n{worker.log_text()}") from exc
        answer = client.delete(f"/jobs/{job_id}")
        assert answer.status_code == 202
        final = wait_status(client, job_id, timeout=30)
        assert final["status"] == "canceled"
        assert final["progress"]["frames_done"] < 60
        assert client.get(f"/jobs/{job_id}/result").status_code == 409
    wait_for(
        lambda: 'mcnet_worker_jobs_total{outcome="canceled"} 1.0' in worker.metrics(),
        10,
        "the canceled outcome metric",
    )


@pytest.mark.parametrize("grace", ["0"])
def test_sigterm_puts_the_running_job_back_in_the_queue(
    stack: Stack, tmp_path: Path, grace: str
) -> None:
    first = stack.start_worker(MCNET_SHUTDOWN_GRACE=grace)
    source, driving = make_inputs(tmp_path, frames=16)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        wait_for(
            lambda: client.get(f"/jobs/{job_id}").json()["progress"]["stage"] == "animating",
            60,
            "the job to animate",
        )
        first.signal(signal.SIGTERM)
        first.process.wait(30)
        assert first.process.returncode == 0, first.log_text()
        body = client.get(f"/jobs/{job_id}").json()
        assert body["status"] == "queued", body
        assert body["progress"]["frames_done"] == 0
        stack.start_worker()
        final = wait_status(client, job_id, timeout=90)
        assert final["status"] == "finished", final


def test_bad_input_found_by_the_worker_fails_once_with_a_readable_reason(
    stack: Stack, tmp_path: Path
) -> None:
    """Inputs gone by the time a worker reaches the job: failed once, a readable reason, one
    INFO line in the worker's log (a user's problem, not an ERROR traceback)."""
    source, driving = make_inputs(tmp_path, frames=2)
    with stack.api() as client:
        job_id = submit(client, source, driving).json()["id"]
        FileStorage(Path(stack.folder / "store")).delete_inputs(job_id)
        worker = stack.start_worker()
        final = wait_status(client, job_id, timeout=60)
        assert final["status"] == "failed"
        assert "submit it again" in final["error"] and "Traceback" not in final["error"]
        result = client.get(f"/jobs/{job_id}/result")
        assert result.status_code == 409
        assert result.json()["detail"] == f"The job failed ({final['error']}); there is no result."
    metrics = worker.metrics()
    assert 'mcnet_worker_jobs_total{outcome="failed"} 1.0' in metrics, "not retried"
    log = worker.log_text()
    assert f"INFO worker.rq_worker: job {job_id}: failed (The uploaded files" in log
    assert "Traceback" not in log and " ERROR " not in log


def test_a_head_that_moves_far_is_reported_in_the_job(stack: Stack, tmp_path: Path) -> None:
    """The driving crop grew to hold the head's path: the finished job says so."""
    stack.start_worker()
    photo = write_image(tmp_path / "photo.png", face_image(240, 240, 120, 120, 80))
    size = 60
    frames = [
        face_image(320, 320, 160 + 0.5 * size * np.sin(i * np.pi / 4), 160, size) for i in range(16)
    ]
    driving = write_video(tmp_path / "sway.mp4", frames)
    with stack.api() as client:
        answer = submit(client, photo, driving, crop="auto")
        assert answer.status_code == 202, answer.text
        final = wait_status(client, answer.json()["id"], timeout=120)
    assert final["status"] == "finished", final
    assert len(final["warnings"]) == 1 and "enlarged" in final["warnings"][0]
