"""The web page keeps a driving video's motion as a template (real browser, API and worker):
after a job, "Keep this motion for the next photos" makes it; the next photo is animated
from it without uploading the video again; the page remembers it across visits and forgets
it once the service no longer has it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.browser import face_photo, talking_video
from tests.web.test_page import choose, video_facts, wait_state

STORE = "mcnet.template"


@pytest.fixture(scope="module")
def photos(inputs: Path) -> tuple[Path, Path]:
    """Two 64x64 PNG faces (crop=none works with the tiny model)."""
    return face_photo(inputs, name="first.png"), face_photo(inputs, 64, name="second.png")


@pytest.fixture(scope="module")
def video(inputs: Path) -> Path:
    """10 frames at 10 fps (1 s), 64x64, with sound."""
    return talking_video(inputs, frames=10, name="speech.mp4")


def _stored(page: Any) -> dict[str, Any] | None:
    raw = page.evaluate(f"localStorage.getItem('{STORE}')")
    return None if raw is None else dict(json.loads(raw))


def _driving_bytes(site: str) -> float:
    """Bytes of driving videos the API has received (its metric)."""
    for line in httpx.get(f"{site}metrics", timeout=10).text.splitlines():
        if line.startswith('mcnet_upload_bytes_total{part="driving"}'):
            return float(line.split()[-1])
    raise AssertionError("no driving upload counted")


def _template_state(page: Any) -> str:
    return str(page.eval_on_selector("#app", "el => el.dataset.template || ''"))


def test_a_kept_motion_animates_the_next_photo_without_the_video(
    page: Any, site: str, photos: tuple[Path, Path], video: Path
) -> None:
    first, second = photos
    choose(page, first, video)
    page.check("input[name=crop][value=none]")
    page.click("#submit")
    assert wait_state(page, "finished", "error") == "finished", page.inner_text("#error")
    assert page.is_visible("#keep-motion")
    assert page.inner_text("#keep-motion") == "Keep this motion for the next photos"

    page.click("#keep-motion")
    page.wait_for_function("() => document.getElementById('app').dataset.template")
    assert page.evaluate("document.activeElement.id") == "keep-status"  # not lost to <body>
    page.wait_for_function(
        "() => document.getElementById('app').dataset.template === 'ready'", timeout=60_000
    )
    assert page.inner_text("#template-name") == "Motion: speech.mp4 (template, 1.0 s)"
    assert page.inner_text("#keep-status").startswith("Motion kept: the next photos move like")
    assert page.is_hidden("#keep") and page.is_hidden("#driving-drop .drop-zone")
    assert page.is_hidden("#template-progress")
    kept = _stored(page)
    assert kept is not None and kept["status"] == "finished"
    template_id = kept["id"]
    made = [s for m, url, s, _ in page.watch.responses if m == "POST" and "/templates" in url]
    assert made == [202]
    uploads = page.evaluate("window.__uploads")
    assert uploads[-1] == {  # the file the page holds, framed as the job was
        "url": "templates",
        "fields": [["driving", "file:speech.mp4"], ["crop", "none"]],
    }

    page.click("text=Animate another")
    assert _template_state(page) == "ready" and page.is_visible("#template-box")
    assert page.inner_text("#submit-help") == "Now choose a photo: it moves like the kept motion."
    page.set_input_files("#source", str(second))
    page.check("input[name=crop][value=none]")
    assert page.is_disabled("input[name=layout][value=side_by_side]")  # needs the video
    assert page.is_visible("#side-by-side-note")
    driving_bytes = _driving_bytes(site)
    page.click("#submit")
    assert wait_state(page, "finished", "error") == "finished", page.inner_text("#error")

    sent = page.evaluate("window.__uploads")[-1]
    assert sent["url"] == "animate", sent
    fields = dict(sent["fields"])
    assert fields["template"] == template_id and fields["source"] == "file:second.png"
    assert "driving" not in fields and not any("speech" in v for v in fields.values())
    assert _driving_bytes(site) == driving_bytes, "the service received no video"
    job_id = page.eval_on_selector("#app", "el => el.dataset.jobId")
    job = httpx.get(f"{site}jobs/{job_id}", timeout=10).json()
    assert job["status"] == "finished" and job["template"] == template_id
    assert job["options"]["layout"] == "result"
    facts = video_facts(page)
    assert facts["error"] is None and facts["duration"] == pytest.approx(1.0, abs=0.15)
    assert page.is_hidden("#keep"), "a result made from the template offers nothing to keep"


def test_the_kept_motion_is_remembered_and_forgotten_once_gone(
    page: Any, site: str, photos: tuple[Path, Path], video: Path
) -> None:
    with httpx.Client(base_url=site, timeout=30) as api:
        files = {"driving": (video.name, video.read_bytes(), "video/mp4")}
        template_id = api.post("templates", files=files, data={"crop": "none"}).json()["id"]
        remembered = {"id": template_id, "name": "speech.mp4", "seconds": 1.0, "status": "started"}
        page.evaluate(f"localStorage.setItem('{STORE}', {json.dumps(json.dumps(remembered))})")
        page.reload()
        # remembered while being made: shown, followed until made, then usable
        page.wait_for_function(
            "() => document.getElementById('app').dataset.template === 'ready'", timeout=60_000
        )
        assert page.inner_text("#template-name") == "Motion: speech.mp4 (template, 1.0 s)"
        assert _stored(page) == {**remembered, "status": "finished"}

        page.click("text=Choose a video instead")  # the way back
        assert _template_state(page) == "" and _stored(page) is None
        assert page.is_visible("#driving-drop .drop-zone") and page.is_hidden("#template-box")
        assert page.is_enabled("input[name=layout][value=side_by_side]")
        assert page.evaluate("document.activeElement.id") == "driving"

        page.evaluate(f"localStorage.setItem('{STORE}', {json.dumps(json.dumps(remembered))})")
        assert api.delete(f"templates/{template_id}").status_code == 204
        page.reload()  # the look-up answers 404: forgotten, and said so
        page.wait_for_function("() => !document.getElementById('app').dataset.template")
        assert _stored(page) is None and page.is_hidden("#template-box")
        assert "is gone" in page.inner_text("#driving-name")
        page.set_input_files("#driving", str(video))
        assert page.inner_text("#driving-name").startswith("speech.mp4 · ")
        looked_up = [
            s for m, url, s, _ in page.watch.responses if m == "GET" and template_id in url
        ]
        assert looked_up[-1] == 404
