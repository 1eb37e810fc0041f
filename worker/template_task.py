"""The RQ job function `extract_template_job`: a motion template made by a worker
(POST /templates), run by the same `MCNetWorker` as animation jobs, from the same queue.

The API enqueues it by its dotted path (core.protocol.TEMPLATE_TASK) with the template's
id, its framing (`crop`) and the probe of the uploaded video, stored as the template's
`driving` input. It fetches the video, runs `worker.motion_template.extract_template` with
the worker's animator (progress into the job's meta, the cancel flag checked between
frames), stores the template under `core.storage.template_key` and marks it made
(core.templates), fenced by the run's lease as an animation job's result is. The worker
deletes the video once the job is recorded finished. Bad input (no face, an unreadable
video) fails the template with the readable reason.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rq import get_current_job

from core.errors import JobCanceledError
from core.jobs import cancel_requested
from core.media_probe import VideoInfo
from core.options import Crop
from core.protocol import Progress, Stage
from core.storage import Storage, StorageError, template_key
from core.template_format import SUFFIX
from worker.motion_template import extract_template
from worker.redis_retry import retrying
from worker.rq_task import (
    JOB_FOLDER_PREFIX,
    ProgressReporter,
    StopCheck,
    current_context,
    fetch_inputs,
    stop_reasons,
    store_product,
)

logger = logging.getLogger(__name__)


def extract_template_job(template_id: str, crop: Crop, video: dict[str, Any]) -> dict[str, Any]:
    """Extract the motion template of the video stored for `template_id`; store it and
    mark it made; return a summary. Raises core.errors exceptions for a bad video,
    JobCanceledError when canceled (or deleted), ShutdownRequeueError when the worker
    shuts down."""
    context = current_context("extract_template_job")
    if context.templates is None:
        raise RuntimeError("extract_template_job needs the worker's template store")
    job = get_current_job()
    connection = context.connection
    patience = context.redis_patience
    if retrying(lambda: cancel_requested(connection, template_id), "cancel check", patience):
        raise JobCanceledError("The template was deleted before it was made.")
    if job is not None:
        job.meta["model"] = context.model
        job.save_meta()
    probed = VideoInfo(**video)
    reporter = ProgressReporter(
        job, context.metrics, probed.frames, context.write_meta, renders=False
    )
    should_cancel = StopCheck(
        lambda: cancel_requested(connection, template_id), context.should_stop, context.lost
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(
        dir=context.work_dir, prefix=f"{JOB_FOLDER_PREFIX}{os.getpid()}-"
    ) as folder:
        driving, output = Path(folder) / "driving", Path(folder) / f"motion{SUFFIX}"
        fetch_inputs(context.storage, template_id, None, driving)
        with stop_reasons(should_cancel, template_id):
            made = extract_template(
                driving,
                output,
                context.animator,
                crop=crop,
                progress=reporter.update,
                should_cancel=should_cancel,
                settings=context.media_settings,
                video=probed,
                model=context.model,
            )
        key = template_key(template_id)
        store_product(
            context,
            job,
            template_id,
            key,
            output,
            made.warnings,
            canceled="The template was deleted before it was stored.",
            what="template",
        )
    templates = context.templates
    if not retrying(
        lambda: templates.mark_made(
            template_id,
            size=made.bytes,
            frames=made.frames,
            fps=made.fps,
            has_audio=made.has_audio,
        ),
        "template record",
        patience,
    ):
        _remove(context.storage, key)
        raise JobCanceledError("The template was deleted before it was stored.")
    reporter.update(Progress(Stage.DONE, made.frames, made.frames))
    seconds = time.perf_counter() - started
    logger.info(
        "template %s: %d frames, %d bytes in %.1f s", template_id, made.frames, made.bytes, seconds
    )
    return {
        "template": key,
        "bytes": made.bytes,
        "frames": made.frames,
        "fps": made.fps,
        "has_audio": made.has_audio,
        "seconds": round(seconds, 3),
    }


def _remove(storage: Storage, key: str) -> None:
    try:
        storage.delete(key)
    except (StorageError, OSError) as exc:
        logger.warning("%s not removed (it expires): %s", key, exc)
