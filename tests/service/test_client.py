"""core.client and `mcnet submit` against the real stack (Redis, a worker, the API)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core.client import ApiError, Client
from core.job_view import JobView
from core.protocol import JobState, Stage
from service.app import create_app
from tests.media_factory import probe_output
from tests.service.conftest import Stack
from tests.service.helpers import ROOT, ApiServer, make_inputs

KEYS = ["shop:k-shop", "other:k-other"]


class CutAfterSending(httpx.BaseTransport):
    """A real transport whose first POST reaches the service, and then the connection
    'breaks' before the answer is read (the client sees a ReadError)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.cut = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and self.cut == 0:
            self.cut += 1
            response.read()
            response.close()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_client_submit_wait_download_cancel_list(stack: Stack, tmp_path: Path) -> None:
    source, driving = make_inputs(tmp_path, frames=24)
    app = create_app(stack.settings(api_keys=KEYS, events_interval=0.1))
    with ApiServer(app) as server:
        transport = CutAfterSending()
        with Client(server.url, "k-shop", transport=transport) as api:
            job = api.submit(source, driving, {"seed": 4, "crop": "none", "audio": False})
            assert transport.cut == 1, "the first answer was lost; the submit was retried"
            assert [j.id for j in api.list()] == [job.id], "one job, not two"
            assert job.options["seed"] == 4 and job.options["audio"] is False

            stack.start_worker()  # now: the job waits, so the stream sees it move
            seen: list[JobView] = []
            final = api.wait(job.id, seen.append, timeout=120)
            assert final.status is JobState.FINISHED and final.ended
            assert final.progress == final.progress.__class__(Stage.DONE, 24, 24)
            order = [(j.progress.stage.order, j.progress.frames_done) for j in seen]
            assert order == sorted(order) and len(seen) >= 2
            saved = api.download(job.id, tmp_path / "out.mp4")
            assert probe_output(saved).frames == 24
            assert not (tmp_path / "out.mp4.part").exists()

            queued = api.submit(source, driving, {"crop": "none"})
            canceled = api.cancel(queued.id)
            assert canceled.status in (JobState.CANCELED, JobState.STARTED)
            assert api.wait(queued.id, timeout=60).status is JobState.CANCELED
            assert [j.id for j in api.list()] == [queued.id, job.id]
            assert [j.id for j in api.list(JobState.FINISHED, page_size=1)] == [job.id]
            assert [j.id for j in api.list(page_size=1)] == [queued.id, job.id]
            with pytest.raises(ApiError) as refused:
                api.download(queued.id, tmp_path / "none.mp4")
            assert refused.value.status == 409
        with Client(server.url, "k-other") as other:
            with pytest.raises(ApiError) as hidden:
                other.get(job.id)
            assert hidden.value.status == 404 and "No job" in hidden.value.detail
            assert list(other.list()) == []
        with Client(server.url, "wrong") as stranger, pytest.raises(ApiError) as unknown:
            stranger.submit(source, driving)
        assert unknown.value.status == 401


def test_mcnet_submit_shows_progress_and_saves_the_mp4(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=5)
    output = tmp_path / "animated.mp4"
    with ApiServer(create_app(stack.settings(api_keys=KEYS))) as server:
        command = [
            sys.executable, "-m", "core.cli", "submit", str(source), str(driving),
            "--server", server.url, "--key", "k-shop", "-o", str(output),
            "-O", "crop=none", "-O", "layout=side_by_side",
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(output)
        assert "100%" in done.stderr and "5/5 frames" in done.stderr
        assert re.match(r"job [0-9a-f-]{36}\n", done.stderr), "the job id comes first"
        probed = probe_output(output)
        assert probed.frames == 5 and probed.width == 3 * probed.height  # side by side
        refused = subprocess.run(
            [*command[:8], "--key", "k-shop", "-O", "crop=sideways"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.returncode == 2 and "refused (422)" in refused.stderr
