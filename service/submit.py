"""POST /animate: receive the upload, check it, store the inputs and queue the job.

Order: parts streamed to a spool folder (size limits while reading) -> missing parts and
options checked (422) -> photo and video probed by content (413/415) -> inputs stored
under the new job id -> job enqueued. Nothing is stored or queued for a refused request.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from core.errors import (
    InvalidOptionsError,
    InvalidRequestError,
    JobNotFoundError,
    JobStateError,
    MCNetError,
    StorageUnavailableError,
    UnsupportedMediaError,
)
from core.face_check import check_photo_face, check_video_face
from core.idempotency import fingerprint
from core.job_view import JobView
from core.keys import ANONYMOUS
from core.logs import log_field, set_log_field
from core.media_probe import MediaLimits, probe_image, probe_video
from core.memory import release_free_memory
from core.options import JobOptions
from core.storage import INPUT_NAMES, StorageError, input_key
from core.webhooks import Network, WebhookTarget, resolve_checked
from service.deps import Services
from service.uploads import receive_form

logger = logging.getLogger(__name__)

T = TypeVar("T")


def parse_options(fields: dict[str, str]) -> JobOptions:
    """Validate the option fields; raise InvalidOptionsError with one readable sentence."""
    try:
        return JobOptions.model_validate(fields)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"] if part is not None)
            message = str(error["msg"]).removeprefix("Value error, ")
            if where:
                value = fields.get(where.split(".")[0])
                shown = f" (got {value!r})" if value is not None else ""
                problems.append(f"{where}: {message}{shown}")
            else:
                problems.append(message)
        raise InvalidOptionsError("Invalid options: " + "; ".join(problems) + ".") from exc


def check_webhook(webhook: WebhookTarget, networks: tuple[Network, ...] | None) -> None:
    """The service sends webhooks (it has a secret) and the URL's host resolves to addresses
    it may call; InvalidOptionsError (422) otherwise."""
    if networks is None:
        raise InvalidOptionsError(
            "Invalid options: this service sends no webhooks (it has no MCNET_WEBHOOK_SECRET)."
        )
    resolve_checked(webhook.url, networks)


async def _probe(
    probe: Callable[[Path, MediaLimits], T], path: Path, limits: MediaLimits, what: str
) -> T:
    """Run a probe off the event loop. A file that breaks the probe itself (an error that is
    not one of ours) is still the sender's bad file: 415, never a 5xx."""
    try:
        return await run_in_threadpool(probe, path, limits)
    except MCNetError:
        raise
    except Exception as exc:  # any failure to read an upload is a bad upload
        logger.warning("probing the %s failed unexpectedly: %r", what, exc)
        raise UnsupportedMediaError(
            f"The {what} could not be read; it may be damaged. Please send another file."
        ) from exc
    finally:
        await run_in_threadpool(release_free_memory)  # a decoded picture's pages


@contextlib.contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    """A store that refuses a write (missing, read-only, full) is a 503, not a 500."""
    try:
        yield
    except (StorageError, OSError) as exc:
        raise StorageUnavailableError(action) from exc


@contextlib.contextmanager
def _spool(folder: Path | None) -> Iterator[Path]:
    """A fresh folder for one upload, removed afterwards (a refused or dropped one too)."""
    with _storage_errors("receive the upload"):
        path = Path(tempfile.mkdtemp(dir=folder, prefix="mcnet-upload-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def submit_job(
    request: Request, ctx: Services, owner: str = ANONYMOUS, idempotency_key: str | None = None
) -> tuple[str, bool]:
    """Handle one POST /animate for `owner`; return the job's id and whether it is the
    earlier job of the same `idempotency_key` (a retry). Raises domain errors (core.errors).

    At most `max_concurrent_uploads` are received at once, `max_uploads_per_client` of one
    client (503 + Retry-After beyond), and `max_concurrent_probes` photos and videos
    checked at once (memory)."""
    if await run_in_threadpool(lambda: ctx.store_health.problem(cached=True)) is not None:
        raise StorageUnavailableError("store the job's files and its result")
    client = owner if owner != ANONYMOUS else (request.client.host if request.client else "")
    with ctx.upload_slots.hold(client):
        return await _submit(request, ctx, owner, idempotency_key)


class JobBeingCreatedError(JobStateError):
    """A retry's Idempotency-Key names a job its first submit has not queued yet."""

    headers = {"Retry-After": "1"}


def replayed_job(ctx: Services, job_id: str) -> JobView:
    """The job a retried Idempotency-Key names; 409 with Retry-After while its first
    submit is still checking and queueing it (never a 404 for a job being made)."""
    try:
        return ctx.jobs.info(job_id)
    except JobNotFoundError as exc:
        raise JobBeingCreatedError(
            "A submit with this Idempotency-Key is still being checked and queued; retry in "
            "a second to get its job."
        ) from exc


async def _submit(
    request: Request, ctx: Services, owner: str, idempotency_key: str | None
) -> tuple[str, bool]:
    job_id = str(uuid.uuid4())
    set_log_field("job_id", job_id)
    with _spool(ctx.spool_dir) as folder:
        with _storage_errors("receive the upload"):
            form = await receive_form(request, folder, ctx.form_limits)
        for part, size in form.sizes.items():
            ctx.metrics.upload_bytes.labels(part).inc(size)
        missing = [part for part in INPUT_NAMES if part not in form.files]
        if missing:
            raise InvalidRequestError(
                f"Missing file part(s): {', '.join(missing)}. Send the photo as `source` and "
                "the talking-head video as `driving` (multipart/form-data).",
            )
        webhook = WebhookTarget.from_form(
            form.fields.pop("webhook", None), form.fields.pop("webhook_events", None)
        )
        options = parse_options(form.fields)
        if webhook is not None:
            await run_in_threadpool(check_webhook, webhook, ctx.webhook_networks)
        async with ctx.probe_slots:
            await _probe(probe_image, form.files["source"], ctx.media_limits, "photo")
            video = await _probe(
                probe_video, form.files["driving"], ctx.media_limits, "driving video"
            )
        options.check_best_frame(video.frames)
        if idempotency_key is not None:
            # Before the limits: a retry gets its first job even when the key is at them.
            fields = options.model_dump(mode="json")
            fields["webhook"] = webhook.as_meta() if webhook is not None else None
            claim = fingerprint(form.digests, fields)
            earlier = await run_in_threadpool(
                ctx.idempotency.claim, owner, idempotency_key, claim, job_id
            )
            if earlier is not None:
                set_log_field("job_id", earlier)
                logger.info("job %s returned again (idempotent retry, key %s)", earlier, owner)
                return earlier, True
        stored: list[str] = []
        try:
            await run_in_threadpool(ctx.limits.check_submit, owner, video.frames)
            if options.crop == "auto":  # a missing face is refused now, not by a worker later
                async with ctx.probe_slots:
                    await _probe(check_photo_face, form.files["source"], ctx.media_limits, "photo")
                    await _probe(
                        check_video_face, form.files["driving"], ctx.media_limits, "driving video"
                    )
            for part in INPUT_NAMES:
                key = input_key(job_id, part)
                with _storage_errors("store the uploaded files"):
                    await run_in_threadpool(ctx.storage.put_file, key, form.files[part], move=True)
                stored.append(key)
            await run_in_threadpool(ctx.owners.record, job_id, owner)
            meta: dict[str, object] = {"request_id": log_field("request_id"), "key": owner}
            if webhook is not None:
                meta["webhook"] = webhook.as_meta()
            await run_in_threadpool(ctx.jobs.submit, job_id, options, video, meta)
        except BaseException:
            for key in stored:
                try:
                    await run_in_threadpool(ctx.storage.delete, key)
                except (StorageError, OSError) as exc:
                    logger.warning("upload %s not removed (it expires): %s", key, exc)
            if idempotency_key is not None:
                await run_in_threadpool(ctx.idempotency.release, owner, idempotency_key, job_id)
            raise
    ctx.metrics.jobs_submitted.inc()
    ctx.metrics.jobs_by_key.labels(owner).inc()
    logger.info("job %s queued (%d frames, key %s)", job_id, video.frames, owner)
    return job_id, False
