"""core.client, `mcnet submit` and `mcnet template` against the real stack (Redis, a
worker, the API)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.client import ApiError, Client
from core.job_view import JobView
from core.protocol import JobState, Stage
from core.template_view import TemplateView
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


def test_client_makes_lists_animates_with_and_deletes_a_template(
    stack: Stack, tmp_path: Path
) -> None:
    source, driving = make_inputs(tmp_path, frames=6)
    app = create_app(stack.settings(api_keys=KEYS, template_storage_per_key=1))  # one at most
    with ApiServer(app) as server:
        transport = CutAfterSending()
        with Client(server.url, "k-shop", transport=transport) as api:
            made = api.create_template(driving, crop="none")
            assert transport.cut == 1, "the first answer was lost; the upload was retried"
            assert [t.id for t in api.templates()] == [made.id], "one template, not two"
            assert made.status is JobState.QUEUED and made.frames == 6 and not made.ready
            with pytest.raises(TimeoutError, match="was not made within 0.3 s"):
                api.wait_template(made.id, timeout=0.3, poll_interval=0.1)  # no worker yet
            asked = time.monotonic()
            with pytest.raises(ApiError) as early:  # 409 + Retry-After: tried again once
                api.submit(source, options={"crop": "none"}, template=made.id, attempts=2)
            assert early.value.status == 409 and early.value.retry_after == 5
            assert "still being made" in early.value.detail
            assert time.monotonic() - asked >= 5, "the submit was not tried again"

            stack.start_worker()
            seen: list[TemplateView] = []
            made = api.wait_template(made.id, seen.append, timeout=120, poll_interval=0.1)
            assert made.ready and made.frames == 6 and made.bytes and seen[-1] == made
            assert api.template(made.id) == made
            asked = time.monotonic()
            with pytest.raises(ApiError) as full:  # a quota lifting in days is not waited for
                api.create_template(driving, crop="none")
            assert full.value.status == 429 and "delete one" in full.value.detail
            assert full.value.retry_after and full.value.retry_after > 60
            assert time.monotonic() - asked < 10, "refused at once, not retried"

            for wrong in ({"driving": driving, "template": made.id}, {}):
                with pytest.raises(ValueError, match="exactly one"):
                    api.submit(source, **wrong)  # type: ignore[arg-type]
            with pytest.raises(ApiError) as side:
                api.submit(
                    source, None, {"crop": "none", "layout": "side_by_side"}, template=made.id
                )
            assert side.value.status == 422 and "side_by_side" in side.value.detail

            job = api.submit(source, options={"crop": "none", "seed": 2}, template=made.id)
            assert job.template == made.id and job.options["seed"] == 2
            assert api.wait(job.id, timeout=120).status is JobState.FINISHED
            assert probe_output(api.download(job.id, tmp_path / "out.mp4")).frames == 6

            with Client(server.url, "k-other") as other:
                with pytest.raises(ApiError) as hidden:
                    other.template(made.id)
                assert hidden.value.status == 404 and list(other.templates()) == []
                with pytest.raises(ApiError) as not_theirs:
                    other.submit(source, options={"crop": "none"}, template=made.id)
                assert not_theirs.value.status == 404

            api.delete_template(made.id)
            assert list(api.templates()) == []
            for gone in (lambda: api.template(made.id), lambda: api.delete_template(made.id)):
                with pytest.raises(ApiError) as deleted:
                    gone()
                assert deleted.value.status == 404
            assert api.get(job.id).status is JobState.FINISHED  # its job keeps its result


def test_mcnet_template_create_list_submit_delete(stack: Stack, tmp_path: Path) -> None:
    stack.start_worker()
    source, driving = make_inputs(tmp_path, frames=5)
    output = tmp_path / "from-template.mp4"
    with ApiServer(create_app(stack.settings(api_keys=KEYS))) as server:
        service = ["--server", server.url, "--key", "k-shop"]

        def mcnet(*argv: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "core.cli", *argv]
            return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)

        made = mcnet("template", "create", str(driving), "--crop", "none", *service)
        assert made.returncode == 0, made.stderr
        template_id = made.stdout.strip()
        assert re.fullmatch(r"[0-9a-f-]{36}", template_id), made.stdout
        assert made.stderr.startswith(f"template {template_id}\n"), made.stderr
        assert "100% " in made.stderr and "5/5 frames" in made.stderr
        assert f"mcnet submit PHOTO --template {template_id}" in made.stderr

        listed = mcnet("template", "list", *service)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith(f"{template_id}  finished (0.2 s, 5 frames, ")

        done = mcnet("submit", str(source), "--template", template_id, "-o", str(output),
                     "-O", "crop=none", *service)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(output) and probe_output(output).frames == 5
        side = mcnet("submit", str(source), "--template", template_id, "-o", str(output),
                     "-O", "crop=none", "-O", "layout=side_by_side", *service)  # fmt: skip
        assert side.returncode == 2 and "refused (422)" in side.stderr, side.stderr

        queued = mcnet("template", "create", str(driving), "--crop", "none", "--no-wait", *service)
        assert queued.returncode == 0 and queued.stderr == "", queued.stderr
        for gone in (template_id, queued.stdout.strip()):
            deleted = mcnet("template", "delete", gone, *service)
            assert (deleted.returncode, deleted.stderr) == (0, f"deleted template {gone}\n")
        again = mcnet("template", "delete", template_id, *service)
        assert again.returncode == 2 and "mcnet template delete: the service refused (404)" in (
            again.stderr
        )
        empty = mcnet("template", "list", *service)
        assert (empty.returncode, empty.stdout) == (0, "")
        assert "no templates kept for this key" in empty.stderr
