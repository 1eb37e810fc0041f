"""A small typed Python client of the animation API (httpx; no torch, no FastAPI).

    from core.client import Client

    with Client("http://127.0.0.1:8000", api_key="...") as api:
        job = api.submit("photo.jpg", "talking.mp4", {"layout": "side_by_side"})
        job = api.wait(job.id, on_progress=lambda j: print(j.progress.frames_done))
        api.download(job.id, "result.mp4")

        motion = api.wait_template(api.create_template("talking.mp4").id)
        job = api.submit("another.jpg", template=motion.id)  # no video uploaded again

`submit` and `create_template` send an `Idempotency-Key` (a new UUID unless given) and retry
an upload whose connection broke, or that was answered 429/503 (or 409 with Retry-After)
with a Retry-After of at most a minute, with the same key: the service then returns the
first job instead of queueing another. `wait` follows the job's Server-Sent Events and
falls back to polling when the stream is unavailable; `wait_template` polls the template
until it is made.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from core.files import replaced_atomically
from core.job_view import JobView
from core.options import Crop
from core.protocol import JobState
from core.template_view import TemplateView

# The longest Retry-After an upload waits for before trying again; beyond it, ApiError.
_MAX_RETRY_WAIT = 60.0


class ApiError(Exception):
    """The service refused a request: its status, its sentence, and when to retry."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


def _raise_for(answer: httpx.Response) -> None:
    if answer.is_success or answer.is_redirect:
        return
    try:
        detail = str(answer.json().get("detail", answer.text))
    except ValueError:
        detail = answer.text or answer.reason_phrase
    retry_after = answer.headers.get("retry-after")
    raise ApiError(
        answer.status_code,
        detail,
        float(retry_after) if retry_after and retry_after.isdigit() else None,
    )


class Client:
    """The animation API at `base_url`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def submit(
        self,
        source: str | Path,
        driving: str | Path | None = None,
        options: dict[str, Any] | None = None,
        *,
        template: str | None = None,
        idempotency_key: str | None = None,
        attempts: int = 4,
        webhook: str | None = None,
        webhook_events: list[str] | None = None,
    ) -> JobView:
        """Upload the photo with the driving video, or name a motion template made by
        `create_template` (exactly one of the two), with job options ({"motion":
        "absolute", "seed": 3, ...}); returns the queued job. Retried with the same
        Idempotency-Key when the connection breaks or the service answers 429/503."""
        if (driving is None) == (template is None):
            raise ValueError("give a driving video or a template id, exactly one of the two")
        fields = {name: _form_value(value) for name, value in (options or {}).items()}
        if template is not None:
            fields["template"] = template
        if webhook is not None:
            fields["webhook"] = webhook
        if webhook_events is not None:
            fields["webhook_events"] = ",".join(webhook_events)
        files = {"source": Path(source)}
        if driving is not None:
            files["driving"] = Path(driving)
        answer = self._upload("/animate", files, fields, idempotency_key, attempts)
        return self.get(answer.json()["id"])

    def _upload(
        self,
        path: str,
        files: Mapping[str, Path],
        fields: Mapping[str, str],
        idempotency_key: str | None,
        attempts: int,
    ) -> httpx.Response:
        """POST a multipart upload; retried with one Idempotency-Key when the connection
        breaks, or the service answers 429/503 or a 409 with Retry-After (the first upload
        with this key is still being queued; a template still being made), waiting at most
        a minute (each file opened afresh)."""
        key = idempotency_key or str(uuid.uuid4())
        attempt = 0
        while True:
            attempt += 1
            try:
                with contextlib.ExitStack() as opened:
                    parts = {
                        name: opened.enter_context(open(file, "rb")) for name, file in files.items()
                    }
                    answer = self.http.post(
                        path, files=parts, data=fields, headers={"Idempotency-Key": key}
                    )
            except httpx.TransportError:
                if attempt == attempts:
                    raise
                time.sleep(min(2.0**attempt, 10.0))
                continue
            given = answer.headers.get("retry-after", "")
            again = answer.status_code in (429, 503) or (answer.status_code == 409 and given)
            if again and attempt < attempts:
                wait = float(given) if given.isdigit() else 2.0**attempt
                if wait <= _MAX_RETRY_WAIT:  # a limit lifting later (a quota) is refused now
                    time.sleep(wait)
                    continue
            _raise_for(answer)
            return answer

    def get(self, job_id: str) -> JobView:
        """The job now."""
        answer = self.http.get(f"/jobs/{job_id}")
        _raise_for(answer)
        return JobView.model_validate(answer.json())

    def cancel(self, job_id: str) -> JobView:
        """Cancel: a queued job never runs; a running one stops between frame batches."""
        answer = self.http.delete(f"/jobs/{job_id}")
        _raise_for(answer)
        return JobView.model_validate(answer.json())

    def list(self, status: JobState | str | None = None, page_size: int = 50) -> Iterator[JobView]:
        """The caller's jobs, newest first (every page, fetched as needed)."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if status is not None:
                params["status"] = JobState(status).value
            if cursor:
                params["cursor"] = cursor
            answer = self.http.get("/jobs", params=params)
            _raise_for(answer)
            body = answer.json()
            for entry in body["jobs"]:
                yield JobView.model_validate(entry)
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def wait(
        self,
        job_id: str,
        on_progress: Callable[[JobView], None] | None = None,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> JobView:
        """Follow the job until it ends (its progress events; polling when the stream is
        unavailable); `on_progress` gets each state seen. TimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for job in self._events(job_id, timeout):
                if on_progress is not None:
                    on_progress(job)
                if job.ended:
                    return job
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} did not end within {timeout} s")
        except (httpx.TransportError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status == 404:
                raise
        while True:  # the stream broke or ended early: poll
            job = self.get(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.ended:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not end within {timeout} s")
            time.sleep(poll_interval)

    def _events(self, job_id: str, timeout: float | None) -> Iterator[JobView]:
        read = httpx.Timeout(self.http.timeout.connect, read=timeout or 60.0)
        with self.http.stream("GET", f"/jobs/{job_id}/events", timeout=read) as stream:
            if not stream.is_success:
                stream.read()
                _raise_for(stream)
            data: list[str] = []
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    yield JobView.model_validate(json.loads("\n".join(data)))
                    data = []

    def create_template(
        self,
        video: str | Path,
        *,
        crop: Crop | None = None,
        idempotency_key: str | None = None,
        attempts: int = 4,
    ) -> TemplateView:
        """Upload a driving video to be kept as a motion template; returns the template,
        queued (a worker extracts it: `wait_template`). `crop`: "auto" (find the face, the
        service's default) or "none" (the video is an aligned face crop). Retried like
        `submit`."""
        fields = {} if crop is None else {"crop": crop}
        answer = self._upload(
            "/templates", {"driving": Path(video)}, fields, idempotency_key, attempts
        )
        return TemplateView.model_validate(answer.json())

    def template(self, template_id: str) -> TemplateView:
        """The template now."""
        answer = self.http.get(f"/templates/{template_id}")
        _raise_for(answer)
        return TemplateView.model_validate(answer.json())

    def templates(self) -> Sequence[TemplateView]:
        """The caller's templates, newest first (the service lists them all at once: a key
        keeps few, within its template storage)."""
        answer = self.http.get("/templates")
        _raise_for(answer)
        return [TemplateView.model_validate(entry) for entry in answer.json()["templates"]]

    def delete_template(self, template_id: str) -> None:
        """Delete the template (an extraction still running is canceled). Jobs already
        submitted from it are not affected."""
        _raise_for(self.http.delete(f"/templates/{template_id}"))

    def wait_template(
        self,
        template_id: str,
        on_progress: Callable[[TemplateView], None] | None = None,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> TemplateView:
        """Poll the template until its extraction has ended (`ready` once finished);
        `on_progress` gets each state seen. TimeoutError after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            made = self.template(template_id)
            if on_progress is not None:
                on_progress(made)
            if made.status.ended:
                return made
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"template {template_id} was not made within {timeout} s")
            time.sleep(poll_interval)

    def download(self, job_id: str, path: str | Path) -> Path:
        """Save the result MP4 at `path` (written under a temporary name, then renamed);
        follows the service's redirect to a presigned URL."""
        target = Path(path)
        with (
            replaced_atomically(target) as partial,
            self.http.stream("GET", f"/jobs/{job_id}/result", follow_redirects=False) as answer,
        ):
            if answer.is_redirect:
                location = answer.headers["location"]
                with httpx.stream("GET", location, timeout=self.http.timeout) as moved:
                    _raise_for(moved)
                    _save(moved, partial)
            else:
                if not answer.is_success:
                    answer.read()
                _raise_for(answer)
                _save(answer, partial)
        return target


def _save(answer: httpx.Response, path: Path) -> None:
    with open(path, "wb") as out:
        for chunk in answer.iter_bytes(1 << 20):
            out.write(chunk)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
