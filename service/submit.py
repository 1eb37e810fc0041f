"""POST /animate: receive the upload, check it, store the inputs and queue the job.

Order: parts streamed to a spool folder (size limits while reading) -> missing parts and
options checked (422) -> photo and video probed by content (413/415) -> inputs stored
under the new job id -> job enqueued. Nothing is stored or queued for a refused request.

A job from a motion template (`template=<id>` instead of the `driving` part) gets a copy
of the template's file as its driving input, so deleting or expiring the template never
breaks a queued job; the worker tells a template from a video by its first bytes.

The steps every upload takes (admission, reception, probing, the face check,
idempotency, undoing what was stored when a later step refuses) are shared with
POST /templates (service.template_submit).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

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
    TemplateNotFoundError,
    UnsupportedMediaError,
)
from core.face_check import check_photo_face, check_video_face
from core.idempotency import IdempotencyStore, fingerprint
from core.job_view import JobView
from core.keys import ANONYMOUS
from core.logs import log_field, set_log_field
from core.media_probe import MediaLimits, VideoInfo, probe_image, probe_video
from core.memory import release_free_memory
from core.options import JobOptions
from core.protocol import JobState
from core.storage import ObjectMissingError, StorageError, input_key, template_key
from core.template_format import SIDE_BY_SIDE_NEEDS_VIDEO
from core.templates import TemplateRecord
from core.webhooks import Network, WebhookTarget, resolve_checked
from service.deps import Services
from service.uploads import FormLimits, ReceivedForm, receive_form

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


async def probe_upload(
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
def storage_errors(action: str) -> Iterator[None]:
    """A store that refuses a write (missing, read-only, full) is a 503, not a 500."""
    try:
        yield
    except (StorageError, OSError) as exc:
        raise StorageUnavailableError(action) from exc


@contextlib.contextmanager
def _spool(folder: Path | None) -> Iterator[Path]:
    """A fresh folder for one upload, removed afterwards (a refused or dropped one too)."""
    with storage_errors("receive the upload"):
        path = Path(tempfile.mkdtemp(dir=folder, prefix="mcnet-upload-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def admitted_upload(request: Request, ctx: Services, owner: str) -> AsyncIterator[Path]:
    """The spool folder of one upload, once admitted: 503 while the store cannot be
    written, or beyond `max_concurrent_uploads` uploads at once (`max_uploads_per_client`
    of one client: its key, or its address without keys)."""
    if await run_in_threadpool(lambda: ctx.store_health.problem(cached=True)) is not None:
        raise StorageUnavailableError("store the job's files and its result")
    client = owner if owner != ANONYMOUS else (request.client.host if request.client else "")
    with ctx.upload_slots.hold(client), _spool(ctx.spool_dir) as folder:
        yield folder


async def read_form(
    request: Request, ctx: Services, folder: Path, limits: FormLimits
) -> ReceivedForm:
    """Receive the multipart body into `folder` (limits checked as bytes arrive) and count
    the bytes of each file part."""
    with storage_errors("receive the upload"):
        form = await receive_form(request, folder, limits)
    for part, size in form.sizes.items():
        ctx.metrics.upload_bytes.labels(part).inc(size)
    return form


async def probe_driving(ctx: Services, path: Path) -> VideoInfo:
    """The driving video probed by content (413/415), `max_concurrent_probes` at once."""
    async with ctx.probe_slots:
        return await probe_upload(probe_video, path, ctx.media_limits, "driving video")


async def check_faces(ctx: Services, photo: Path | None, video: Path | None) -> None:
    """crop=auto: a face in the photo and in sampled frames of the video (422 otherwise)."""
    async with ctx.probe_slots:
        if photo is not None:
            await probe_upload(check_photo_face, photo, ctx.media_limits, "photo")
        if video is not None:
            await probe_upload(check_video_face, video, ctx.media_limits, "driving video")


async def claim_idempotency(
    store: IdempotencyStore,
    owner: str,
    key: str | None,
    form: ReceivedForm,
    fields: dict[str, Any],
    new_id: str,
) -> str | None:
    """With an Idempotency-Key: the id its first request made (a retry), or None after
    claiming it for `new_id` (422 when the key was used for another request)."""
    if key is None:
        return None
    claim = fingerprint(form.digests, fields)
    earlier = await run_in_threadpool(store.claim, owner, key, claim, new_id)
    if earlier is not None:
        set_log_field("job_id", earlier)
        logger.info("%s returned again (idempotent retry, key %s)", earlier, owner)
    return earlier


class Undo:
    """What a submit has stored so far, undone (best effort) when a later step refuses."""

    def __init__(self, ctx: Services) -> None:
        self.ctx = ctx
        self.keys: list[str] = []
        self.steps: list[Callable[[], None]] = []

    async def store(self, key: str, path: Path) -> None:
        """Store the file at `path` under `key` (503 when the store refuses)."""
        with storage_errors("store the uploaded files"):
            await run_in_threadpool(self.ctx.storage.put_file, key, path, move=True)
        self.keys.append(key)

    async def run(self) -> None:
        """Delete what was stored, then undo the other steps, newest first."""
        for key in self.keys:
            try:
                await run_in_threadpool(self.ctx.storage.delete, key)
            except (StorageError, OSError) as exc:
                logger.warning("upload %s not removed (it expires): %s", key, exc)
        for step in reversed(self.steps):
            await run_in_threadpool(step)


@contextlib.asynccontextmanager
async def undone_on_failure(
    ctx: Services, store: IdempotencyStore, owner: str, key: str | None, new_id: str
) -> AsyncIterator[Undo]:
    """An `Undo` run when the block raises, releasing the Idempotency-Key claimed for
    `new_id` too."""
    undo = Undo(ctx)
    if key is not None:
        undo.steps.append(lambda: store.release(owner, key, new_id))
    try:
        yield undo
    except BaseException:
        await undo.run()
        raise


async def submit_job(
    request: Request, ctx: Services, owner: str = ANONYMOUS, idempotency_key: str | None = None
) -> tuple[str, bool]:
    """Handle one POST /animate for `owner`; return the job's id and whether it is the
    earlier job of the same `idempotency_key` (a retry). Raises domain errors (core.errors).

    At most `max_concurrent_uploads` are received at once, `max_uploads_per_client` of one
    client (503 + Retry-After beyond), and `max_concurrent_probes` photos and videos
    checked at once (memory)."""
    job_id = str(uuid.uuid4())
    set_log_field("job_id", job_id)
    async with admitted_upload(request, ctx, owner) as folder:
        form = await read_form(request, ctx, folder, ctx.form_limits)
        return await _submit(ctx, owner, idempotency_key, job_id, form, folder)


class JobBeingCreatedError(JobStateError):
    """A retry's Idempotency-Key names a job its first submit has not queued yet."""

    headers = {"Retry-After": "1"}


BEING_CREATED = (
    "A submit with this Idempotency-Key is still being checked and queued; retry in a "
    "second to get its {what}."
)


def replayed_job(ctx: Services, job_id: str) -> JobView:
    """The job a retried Idempotency-Key names; 409 with Retry-After while its first
    submit is still checking and queueing it (never a 404 for a job being made)."""
    try:
        return ctx.jobs.info(job_id)
    except JobNotFoundError as exc:
        raise JobBeingCreatedError(BEING_CREATED.format(what="job")) from exc


def _driving_part(form: ReceivedForm) -> str | None:
    """The template id the form names instead of a driving video (None: a video); 422
    unless exactly one of the two is there, and the photo."""
    template = form.fields.pop("template", None)
    if "source" not in form.files:
        raise InvalidRequestError(
            "Missing file part(s): source. Send the photo as `source` and the talking-head "
            "video as `driving` (or a motion template's id as `template`), as "
            "multipart/form-data."
        )
    if template is not None and "driving" in form.files:
        raise InvalidRequestError(
            "Send either a driving video (`driving`) or a motion template's id (`template`), "
            "not both."
        )
    if template is None and "driving" not in form.files:
        raise InvalidRequestError(
            "Missing file part(s): driving. Send the talking-head video as `driving` (or a "
            "motion template's id as `template`), as multipart/form-data."
        )
    return template


class TemplateNotReadyError(JobStateError):
    """The template named by a submit is still being made, or its extraction failed."""


class TemplateBeingMadeError(TemplateNotReadyError):
    """The template named by a submit is still being made: try again in a few seconds."""

    headers = {"Retry-After": "5"}


def ready_template(ctx: Services, owner: str, template_id: str) -> TemplateRecord:
    """The owner's template, made: 404 when unknown (or another key's), 409 while it is
    still being made or when its extraction failed."""
    found = ctx.templates.get(template_id)
    if found is None or found.owner != owner:
        raise TemplateNotFoundError(template_id)
    record, extraction = ctx.templates.with_extraction(found, ctx.jobs.extraction)
    if record.made:
        return record
    status = extraction.status if extraction is not None else None
    if status in (JobState.QUEUED, JobState.STARTED):
        raise TemplateBeingMadeError(
            "The template is still being made; submit once its status is finished "
            f"(GET /templates/{template_id})."
        )
    if status is JobState.FAILED:
        why = f" ({extraction.error})" if extraction is not None and extraction.error else ""
        raise TemplateNotReadyError(
            f"The template failed to be made{why}; make another one (POST /templates) or "
            "send the video."
        )
    raise TemplateNotFoundError(template_id)


def _copy_template(ctx: Services, template_id: str, folder: Path) -> Path:
    """The template's file, copied into `folder` (404 when it expired meanwhile)."""
    path = folder / "template"
    try:
        ctx.storage.get_file(template_key(template_id), path)
    except ObjectMissingError as exc:
        raise TemplateNotFoundError(template_id) from exc
    return path


async def _submit(
    ctx: Services,
    owner: str,
    idempotency_key: str | None,
    job_id: str,
    form: ReceivedForm,
    folder: Path,
) -> tuple[str, bool]:
    template_id = _driving_part(form)
    webhook = WebhookTarget.from_form(
        form.fields.pop("webhook", None), form.fields.pop("webhook_events", None)
    )
    options = parse_options(form.fields)
    if template_id is not None and options.layout == "side_by_side":
        raise InvalidOptionsError(SIDE_BY_SIDE_NEEDS_VIDEO)
    if webhook is not None:
        await run_in_threadpool(check_webhook, webhook, ctx.webhook_networks)
    template = (
        await run_in_threadpool(ready_template, ctx, owner, template_id)
        if template_id is not None
        else None
    )
    async with ctx.probe_slots:
        await probe_upload(probe_image, form.files["source"], ctx.media_limits, "photo")
    video = (
        template.video if template is not None else await probe_driving(ctx, form.files["driving"])
    )
    options.check_best_frame(video.frames)
    fields = options.model_dump(mode="json")
    fields["webhook"] = webhook.as_meta() if webhook is not None else None
    if template_id is not None:
        fields["template"] = template_id
    # Before the limits: a retry gets its first job even when the key is at them.
    earlier = await claim_idempotency(ctx.idempotency, owner, idempotency_key, form, fields, job_id)
    if earlier is not None:
        return earlier, True
    async with undone_on_failure(ctx, ctx.idempotency, owner, idempotency_key, job_id) as undo:
        await run_in_threadpool(ctx.limits.check_submit, owner, video.frames)
        if options.crop == "auto":  # a missing face is refused now, not by a worker later
            await check_faces(
                ctx, form.files["source"], form.files["driving"] if template is None else None
            )
        driving = (
            form.files["driving"]
            if template_id is None
            else await run_in_threadpool(_copy_template, ctx, template_id, folder)
        )
        await undo.store(input_key(job_id, "source"), form.files["source"])
        await undo.store(input_key(job_id, "driving"), driving)
        await run_in_threadpool(ctx.owners.record, job_id, owner)
        meta: dict[str, object] = {"request_id": log_field("request_id"), "key": owner}
        if webhook is not None:
            meta["webhook"] = webhook.as_meta()
        if template_id is not None:
            meta["template"] = template_id
        await run_in_threadpool(ctx.jobs.submit, job_id, options, video, meta)
    ctx.metrics.jobs_submitted.inc()
    ctx.metrics.jobs_by_key.labels(owner).inc()
    if template_id is not None:
        ctx.metrics.template_jobs.inc()
    logger.info(
        "job %s queued (%d frames%s, key %s)",
        job_id,
        video.frames,
        f", template {template_id}" if template_id is not None else "",
        owner,
    )
    return job_id, False
