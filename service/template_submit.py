"""POST /templates: receive a driving video, check it as POST /animate checks its driving
part, store it and queue the extraction of its motion template.

Order: admission (store writable, upload slots) -> the `driving` part streamed to a spool
folder (size limits while reading) -> fields checked (422) -> the video probed by content
(413/415) -> the Idempotency-Key -> the queue's length and the key's template storage
(429) -> with crop=auto, a face in sampled frames (422) -> the video stored as the
template's `driving` input, the template recorded (core.templates) and its extraction
queued on the jobs' queue (core.jobs.submit_template). Nothing is kept for a refused
request. The worker deletes the video once the template is made.
"""

from __future__ import annotations

import logging
import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from core.errors import InvalidOptionsError, InvalidRequestError
from core.keys import ANONYMOUS
from core.logs import log_field, set_log_field
from core.options import CROPS
from core.storage import input_key
from service.deps import Services
from service.submit import (
    admitted_upload,
    check_faces,
    claim_idempotency,
    probe_driving,
    read_form,
    undone_on_failure,
)

logger = logging.getLogger(__name__)


def _crop(value: str | None) -> str:
    """The `crop` field: auto (default: find the face) or none (aligned crops)."""
    crop = "auto" if value is None else value
    if crop not in CROPS:
        raise InvalidOptionsError(f"Invalid options: crop must be auto or none (got {value!r}).")
    return crop


async def create_template(
    request: Request, ctx: Services, owner: str = ANONYMOUS, idempotency_key: str | None = None
) -> tuple[str, bool]:
    """Handle one POST /templates for `owner`; return the template's id and whether it is
    the earlier template of the same `idempotency_key` (a retry). Raises domain errors."""
    template_id = str(uuid.uuid4())
    set_log_field("job_id", template_id)
    async with admitted_upload(request, ctx, owner) as folder:
        form = await read_form(request, ctx, folder, ctx.template_form_limits)
        if "driving" not in form.files:
            raise InvalidRequestError(
                "Missing file part: driving. Send the talking-head video as `driving` "
                "(multipart/form-data)."
            )
        crop = _crop(form.fields.get("crop"))
        video = await probe_driving(ctx, form.files["driving"])
        store = ctx.template_idempotency
        fields = {"crop": crop}
        earlier = await claim_idempotency(store, owner, idempotency_key, form, fields, template_id)
        if earlier is not None:
            return earlier, True
        async with undone_on_failure(ctx, store, owner, idempotency_key, template_id) as undo:
            await run_in_threadpool(ctx.limits.check_queue, owner)
            await run_in_threadpool(ctx.limits.check_template_storage, owner)
            if crop == "auto":  # a missing face is refused now, not by a worker later
                await check_faces(ctx, None, form.files["driving"])
            await undo.store(input_key(template_id, "driving"), form.files["driving"])
            await run_in_threadpool(ctx.templates.create, template_id, owner, crop, video)
            undo.steps.append(lambda: _forget(ctx, template_id))
            meta: dict[str, object] = {"request_id": log_field("request_id"), "key": owner}
            await run_in_threadpool(ctx.jobs.submit_template, template_id, crop, video, meta)
    logger.info("template %s queued (%d frames, key %s)", template_id, video.frames, owner)
    return template_id, False


def _forget(ctx: Services, template_id: str) -> None:
    """Remove the record of a template whose extraction could not be queued."""
    record = ctx.templates.get(template_id)
    if record is not None:
        ctx.templates.remove(record)
