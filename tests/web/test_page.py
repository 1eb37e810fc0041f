"""The web page in a real browser (Debian's Chromium) against a real API and worker.

A person picks a photo and a video, submits, watches the progress reach 100% and plays
the result; errors appear as sentences on the page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.options import JobOptions
from tests.media_factory import Audio, face_image, talking_face_frames, write_image, write_video
from tests.service.conftest import Stack
from tests.service.helpers import ApiServer
from tests.web.browser import (
    PHONE,
    face_photo,
    noise_photo,
    open_page,
    talking_video,
    text_file,
    web_app,
)
from tests.web.conftest import API_KEY

FINISH_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def photo(inputs: Path) -> Path:
    """64x64 PNG of a face (crop=none works with the tiny model)."""
    return face_photo(inputs)


@pytest.fixture(scope="module")
def video(inputs: Path) -> Path:
    """10 frames at 10 fps (1 s), 64x64, with sound."""
    return talking_video(inputs, frames=10)


def choose(page: Any, photo: Path, video: Path) -> None:
    """Pick the two files as a person would with the file dialogs."""
    page.set_input_files("#source", str(photo))
    page.set_input_files("#driving", str(video))


def wait_state(page: Any, *states: str, timeout: float = FINISH_TIMEOUT_MS) -> str:
    """Wait until the page's state is one of `states`; return it."""
    names = ", ".join(f"'{s}'" for s in states)
    page.wait_for_function(
        f"() => [{names}].includes(document.getElementById('app').dataset.state)", timeout=timeout
    )
    return str(page.eval_on_selector("#app", "el => el.dataset.state"))


def job_status(site: str, job_id: str, key: str | None = None) -> dict[str, Any]:
    """GET /jobs/{id} as the API answers it."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = httpx.get(f"{site}jobs/{job_id}", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def video_facts(page: Any) -> dict[str, Any]:
    """Wait until the result <video> can play, then read what the browser knows of it."""
    page.wait_for_function(
        "() => document.getElementById('result-video').readyState >= 3", timeout=20_000
    )
    facts: dict[str, Any] = page.evaluate(
        """() => {
        const v = document.getElementById('result-video');
        return {duration: v.duration, readyState: v.readyState, width: v.videoWidth,
                height: v.videoHeight, src: v.currentSrc, error: v.error && v.error.code};
    }"""
    )
    return facts


def play_and_seek(page: Any) -> dict[str, float]:
    """Play the result for a moment, then seek into it; the times the browser reports."""
    times: dict[str, float] = page.evaluate(
        """async () => {
        const v = document.getElementById('result-video');
        v.muted = true;
        await v.play();
        await new Promise((r) => setTimeout(r, 400));
        const played = v.currentTime;
        v.pause();
        const seeked = new Promise((r) => v.addEventListener('seeked', r, {once: true}));
        v.currentTime = v.duration / 2;
        await seeked;
        return {played: played, seeked: v.currentTime, half: v.duration / 2};
    }"""
    )
    return times


def test_empty_page_is_labelled_and_fits_a_phone(browser: Any, site: str) -> None:
    page = open_page(browser, site, PHONE)
    try:
        assert page.title() == "MCNet: animate a portrait"
        assert page.eval_on_selector("#app", "el => el.dataset.state") == "empty"
        assert page.is_disabled("#submit")
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, button, video')]
                .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                        && !(el.tagName === 'BUTTON' && el.textContent.trim()))
                .map((el) => el.id || el.name || el.outerHTML.slice(0, 60))"""
        )
        assert unlabelled == []
        page.click("summary")  # "More options" opens
        assert page.is_visible("#api-key")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "the page scrolls sideways on a phone"
        answer = httpx.get(site, timeout=10)
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert httpx.get(site + "static/app.js", timeout=10).status_code == 200
    finally:
        page.context.close()


def test_dropped_files_show_previews(page: Any, photo: Path, video: Path) -> None:
    for zone, path, kind in (
        ("#source-drop", photo, "image/png"),
        ("#driving-drop", video, "video/mp4"),
    ):
        page.evaluate(
            """([zone, bytes, name, kind]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, {type: kind}));
            const target = document.querySelector(zone + ' .drop-zone');
            for (const type of ['dragenter', 'dragover', 'drop']) {
                target.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true,
                                                          cancelable: true}));
            }
        }""",
            [zone, list(path.read_bytes()), path.name, kind],
        )
    page.wait_for_function("() => document.getElementById('source-preview').naturalWidth === 64")
    page.wait_for_function("() => document.getElementById('driving-preview').readyState >= 1")
    assert page.eval_on_selector("#app", "el => el.dataset.state") == "ready"
    assert page.is_enabled("#submit")
    assert "photo.png" in page.inner_text("#source-name")
    assert "talk.mp4" in page.inner_text("#driving-name")


def test_animate_shows_progress_and_plays_the_result(
    page: Any, site: str, photo: Path, video: Path
) -> None:
    page.wait_for_selector("#demo-banner", state="visible", timeout=10_000)  # a demo worker
    assert "grey rectangle" in page.inner_text("#demo-banner")
    choose(page, photo, video)
    page.check("input[name=motion][value=absolute]")
    page.check("input[name=crop][value=none]")
    assert page.is_disabled("#paste_back") and not page.is_checked("#paste_back")
    page.click("#submit")
    assert wait_state(page, "finished", "error") == "finished", page.inner_text("#error")

    log: list[dict[str, Any]] = page.evaluate("window.__progress")
    values = [entry["value"] for entry in log if entry["value"] is not None]
    assert values and values == sorted(values), f"progress went backwards: {values}"
    assert values[-1] == 100
    assert page.inner_text("#percent") == "100%"
    assert page.inner_text("#frames") == "10 / 10 frames"
    assert "running" in {entry["state"] for entry in log}
    # the player's clock reads 0:00 / 0:01 or less for such a clip: the page says its length
    page.wait_for_function("() => document.getElementById('result-length').textContent")
    assert page.inner_text("#result-length") == "Length: 1.0 s"

    sent = page.evaluate("window.__sent")
    assert len(sent) == 1 and len(sent[0]) == len(set(sent[0]))
    assert set(sent[0]) == {"source", "driving"} | (set(JobOptions.model_fields) - {"paste_back"})

    job_id = page.eval_on_selector("#app", "el => el.dataset.jobId")
    body = job_status(site, job_id)
    assert body["status"] == "finished"
    assert body["progress"]["frames_done"] == body["progress"]["frames_total"] == 10
    options = body["options"]
    assert (options["motion"], options["crop"], options["layout"]) == ("absolute", "none", "result")
    assert options["audio"] is True and options["paste_back"] in (None, False)

    facts = video_facts(page)
    assert facts["error"] is None
    assert facts["readyState"] >= 3
    assert facts["duration"] == pytest.approx(1.0, abs=0.15)
    assert facts["width"] > 0 and facts["height"] > 0
    assert facts["src"] == f"{site}jobs/{job_id}/result"
    times = play_and_seek(page)
    assert times["played"] > 0
    assert times["seeked"] == pytest.approx(times["half"], abs=0.15)
    statuses = {s for m, url, s, _ in page.watch.responses if url.endswith(f"{job_id}/result")}
    assert 206 in statuses, f"the browser did not get a byte range: {statuses}"
    link = page.locator("#download")
    assert link.get_attribute("href").endswith(f"jobs/{job_id}/result")
    assert link.get_attribute("download").endswith(".mp4")


def test_a_text_file_as_the_photo_is_explained(
    page: Any, inputs: Path, video: Path, photo: Path
) -> None:
    choose(page, text_file(inputs), video)
    page.wait_for_function(
        "() => document.getElementById('submit-help').textContent.includes('does not look')"
    )
    assert page.is_enabled("#submit")  # the service decides; the page only warns
    page.click("#submit")
    assert wait_state(page, "error", "finished", timeout=20_000) == "error"
    assert page.is_visible("#error")
    message = page.inner_text("#error-message")
    assert message == "This photo cannot be used. Choose a JPEG, PNG or WebP picture."
    assert "photo" in page.inner_text("#error-detail")  # the API's own sentence
    posts = [s for m, url, s, _ in page.watch.responses if m == "POST"]
    assert posts == [415]
    page.click("text=Change the files or options")
    assert page.eval_on_selector("#app", "el => el.dataset.state") == "ready"
    assert page.is_hidden("#error")
    page.set_input_files("#source", str(photo))
    assert page.is_enabled("#submit")


def test_no_face_in_the_photo_is_explained(page: Any, inputs: Path, video: Path) -> None:
    choose(page, noise_photo(inputs), video)  # crop=auto (the default) looks for a face
    page.click("#submit")
    assert wait_state(page, "error", "finished") == "error"
    assert page.inner_text("#error-message") == (
        "No face was found in the photo. Use a photo where one face is clearly visible."
    )
    assert "No face was found" in page.inner_text("#error-detail")
    assert "paste_back" in page.evaluate("window.__sent")[0]  # sent with crop=auto only


def test_cancel_stops_the_job(page: Any, site: str, inputs: Path, photo: Path) -> None:
    long_video = talking_video(inputs, frames=60, name="long.mp4")
    choose(page, photo, long_video)
    page.check("input[name=crop][value=none]")
    page.click("#submit")
    page.wait_for_function("() => document.getElementById('app').dataset.jobId", timeout=20_000)
    job_id = page.eval_on_selector("#app", "el => el.dataset.jobId")
    page.click("#cancel")
    assert wait_state(page, "ready", "error", timeout=20_000) == "ready"
    assert page.inner_text("#submit-help") == "The job was canceled."
    assert page.is_hidden("#job") and page.is_enabled("#submit")
    deletes = [s for m, url, s, _ in page.watch.responses if m == "DELETE"]
    assert deletes == [202]
    assert job_status(site, job_id)["status"] in ("canceled", "started")  # stops between batches


def test_api_key_is_asked_for_and_sent(
    browser: Any, keyed_site: str, inputs: Path, photo: Path
) -> None:
    short = talking_video(inputs, frames=4, name="short.mp4")
    page = open_page(browser, keyed_site)
    try:
        choose(page, photo, short)
        page.check("input[name=crop][value=none]")
        page.click("#submit")
        assert wait_state(page, "error", timeout=20_000) == "error"
        assert "needs an API key" in page.inner_text("#error-message")
        assert page.is_visible("#api-key")  # "More options" opened by itself
        page.fill("#api-key", API_KEY)
        page.click("text=Change the files or options")
        page.click("#submit")
        assert wait_state(page, "finished", "error") == "finished", page.inner_text("#error")
        facts = video_facts(page)
        assert facts["src"].startswith("blob:")  # fetched with the key, played from memory
        assert facts["duration"] == pytest.approx(0.4, abs=0.15)
        assert page.inner_text("#result-length") == "Length: 0.4 s"
        assert page.locator("#download").get_attribute("href").startswith("blob:")
    finally:
        page.context.close()


def test_progress_arrives_as_events_with_polling_disabled(
    browser: Any, keyed_site: str, inputs: Path, photo: Path
) -> None:
    """The page follows the job through GET /jobs/{id}/events (sending the API key); every
    GET /jobs/{id} (the polling fallback) is cut off, and none is needed."""
    long_video = talking_video(inputs, frames=40, name="forty.mp4")
    polls: list[str] = []
    streams: list[int] = []

    def no_polling(route: Any) -> None:
        if route.request.method == "GET":
            polls.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def watch(page: Any) -> None:
        page.add_init_script(f"sessionStorage.setItem('mcnet.apiKey', '{API_KEY}')")
        page.route(re.compile(r".*/jobs/[0-9a-f-]{36}$"), no_polling)
        page.on(
            "response",
            lambda r: streams.append(r.status) if r.url.endswith("/events") else None,
        )

    page = open_page(browser, keyed_site, before=watch)
    try:
        choose(page, photo, long_video)
        page.check("input[name=crop][value=none]")
        page.click("#submit")
        assert wait_state(page, "finished", "error") == "finished", page.inner_text("#error")
        assert polls == [] and streams == [200]
        values = [e["value"] for e in page.evaluate("window.__progress") if e["value"] is not None]
        assert values == sorted(values) and values[-1] == 100
        assert any(0 < value < 100 for value in values), f"no progress between: {values}"
        assert page.inner_text("#frames") == "40 / 40 frames"
        estimates = [e["estimate"] for e in page.evaluate("window.__progress") if e["estimate"]]
        assert estimates and all(re.fullmatch(r"About \d+ (s|min) left", e) for e in estimates)
        assert page.is_hidden("#estimate")  # the job has ended
    finally:
        page.context.close()


def test_swapped_photo_and_video_are_named_and_not_sent(
    page: Any, photo: Path, video: Path
) -> None:
    choose(page, video, photo)
    assert page.inner_text("#submit-help") == (
        "The photo and the video are swapped: put the photo in the first box and the video "
        "in the second."
    )
    assert page.is_disabled("#submit")
    assert "this is a video, not a photo" in page.inner_text("#source-name")
    assert "this is a picture, not a video" in page.inner_text("#driving-name")
    page.set_input_files("#source", str(photo))
    assert page.inner_text("#submit-help") == (
        "The video box holds a picture: choose a video of a talking face."
    )
    assert page.is_disabled("#submit")
    page.set_input_files("#driving", str(video))
    assert page.inner_text("#submit-help") == "Ready to animate."
    assert page.is_enabled("#submit")


def test_progress_never_goes_back_while_the_face_is_found(page: Any, inputs: Path) -> None:
    photo = write_image(inputs / "portrait.png", face_image(160, 160, 80, 80, 40))
    frames = talking_face_frames(100, 128, 128)
    clip = write_video(inputs / "faces.mp4", frames, fps=25, audio=Audio())
    choose(page, photo, clip)  # crop=auto (the default): the worker finds the face first
    page.click("#submit")
    assert wait_state(page, "finished", "error") == "finished", page.inner_text("#error")
    log = page.evaluate("window.__progress")
    values = [entry["value"] for entry in log if entry["value"] is not None]
    assert values == sorted(values) and values[-1] == 100, f"progress went back: {values}"
    # The cropping stage is seen when an event falls within it (often, not always): its
    # frames fill the bar's first tenth, and the frame count is the animation's only.
    cropping = [entry for entry in log if entry["stage"] == "cropping"]
    assert all(entry["frames"] == "" for entry in cropping)
    assert all(entry["value"] is None or entry["value"] <= 10 for entry in cropping)
    assert any(entry["stage"] == "animating" for entry in log)


def test_a_long_job_is_announced_with_its_estimate(
    browser: Any, web_stack: Stack, inputs: Path, photo: Path, video: Path
) -> None:
    settings = web_stack.settings(long_job_warning=1e-6)
    with ApiServer(web_app(settings)) as server:
        page = open_page(browser, server.url + "/")
        try:
            for attempt in range(2):  # the first job lets the worker measure its speed
                if attempt:
                    page.click("text=Animate another")
                choose(page, photo, video)
                page.check("input[name=crop][value=none]")
                page.click("#submit")
                assert wait_state(page, "finished", "error") == "finished"
            warning = page.inner_text("#job-warning")
            assert warning.startswith("This job should take about "), warning
        finally:
            page.context.close()
