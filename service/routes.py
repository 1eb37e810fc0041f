"""The HTTP routes: submit, status, result (with Range), cancel, health, metrics.

Routes read the app's services through `ServicesDep`; failures are domain errors that
carry their HTTP status (core.errors), answered by the app's one exception handler.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from core.errors import (
    JobStateError,
    RangeNotSatisfiableError,
    RateLimitedError,
    ResultGoneError,
)
from core.estimate import long_job_warning
from core.idempotency import check_idempotency_key
from core.jobs import JobInfo
from core.protocol import DEMO_MODEL, JobState, Stage
from core.storage import Storage, StorageError, check_writable, result_key
from service.deps import OwnerDep, Services, ServicesDep, check_owner, require_key
from service.ranges import parse_range
from service.ratelimit import limit_requests
from service.schemas import (
    ErrorBody,
    JobBody,
    Links,
    StageBody,
    SubmitResponse,
    animate_request_schema,
)
from service.submit import submit_job

logger = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Malformed multipart body.",
        413: "A file, its pixel count, frame count or duration is over a limit.",
        415: "Not a usable image or video (wrong kind, empty, damaged, truncated).",
        422: "Missing parts, unknown fields, invalid options, or (crop=auto) no face in the "
        "photo or in the driving video.",
    }.items()
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such job."}
}

# Every route of a key's jobs: the key check and the request limit answer these, and a
# job queue or file store out of reach a 503.
KEYED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or unknown API key (when keys are on)."},
    429: {
        "model": ErrorBody,
        "description": "Over the key's requests per minute (or, on POST /animate, its jobs "
        "at once); `Retry-After` says when to try again.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    },
    503: {"model": ErrorBody, "description": "The job queue or the file store is unavailable."},
}

jobs_router = APIRouter(
    dependencies=[Depends(require_key), Depends(limit_requests)], responses=KEYED_RESPONSES
)
health_router = APIRouter()


def _links(request: Request, job_id: str) -> Links:
    root = request.scope.get("root_path", "")
    return Links(
        self=root + request.app.url_path_for("job_status", job_id=job_id),
        result=root + request.app.url_path_for("job_result", job_id=job_id),
        events=root + request.app.url_path_for("job_events", job_id=job_id),
    )


def job_body(request: Request, info: JobInfo) -> JobBody:
    links = _links(request, info.id)
    return JobBody(
        id=info.id,
        status=info.status.value,
        progress=info.progress,
        created_at=info.created_at,
        started_at=info.started_at,
        ended_at=info.ended_at,
        error=info.error,
        options=info.options,
        warnings=info.warnings,
        precision=info.precision,
        result_url=links.result if info.status is JobState.FINISHED else None,
        model=info.model,
        queue_position=info.queue_position,
        estimated_seconds=info.estimated_seconds,
        links=links,
    )


@jobs_router.post(
    "/animate",
    status_code=202,
    response_model=SubmitResponse,
    responses={
        202: {
            "description": "Queued (or, for a retried Idempotency-Key, the first job).",
            "headers": {
                "Location": {"schema": {"type": "string"}, "description": "The job's URL."},
                "Idempotent-Replayed": {
                    "schema": {"type": "string", "enum": ["true"]},
                    "description": "Present when this is the job of an earlier submit "
                    "with the same Idempotency-Key.",
                },
            },
        },
        **_ERRORS,
    },
    openapi_extra={"requestBody": animate_request_schema()},
    summary="Animate a photo with a driving video",
)
async def animate(
    request: Request,
    response: Response,
    services: ServicesDep,
    owner: OwnerDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Any unique string (a UUID): a retried submit with the same key, "
            "files and options returns the first job (`Idempotent-Replayed: true`) instead "
            "of queueing another; the same key with other files or options is a 422. Kept "
            "as long as the job."
        ),
    ] = None,
) -> SubmitResponse:
    """Queue a job: multipart/form-data with `source` (photo), `driving` (video) and
    any option fields. Answers 202 with the job id; follow `links.self` or `links.events`."""
    key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
    retry = key is not None and await run_in_threadpool(services.idempotency.known, owner, key)
    try:
        if not retry:  # a retried submit gets its first job back, whatever the limit
            await run_in_threadpool(services.limits.check_jobs, owner)
    except RateLimitedError:
        services.metrics.rate_limited.labels(owner, "concurrent_jobs").inc()
        raise
    job_id, replayed = await submit_job(request, services, owner, key)
    if not replayed:
        await run_in_threadpool(services.limits.track, owner, job_id)
    links = _links(request, job_id)
    response.headers["Location"] = links.self
    info = await run_in_threadpool(services.jobs.info, job_id)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    warning = long_job_warning(info.estimated_seconds, services.long_job_warning)
    return SubmitResponse(
        id=job_id,
        status=info.status.value if replayed else JobState.QUEUED.value,
        links=links,
        estimated_seconds=info.estimated_seconds,
        warnings=[warning] if warning else [],
    )


@jobs_router.get(
    "/jobs/{job_id}",
    name="job_status",
    response_model=JobBody,
    responses=_NOT_FOUND,
    summary="Status and progress of a job",
)
async def job_status(
    job_id: str, request: Request, services: ServicesDep, owner: OwnerDep
) -> JobBody:
    """State (queued, started, finished, failed, canceled), progress, times, options."""
    await run_in_threadpool(check_owner, services, owner, job_id)
    info = await run_in_threadpool(services.jobs.info, job_id)
    return job_body(request, info)


@jobs_router.head("/jobs/{job_id}/result", include_in_schema=False)
@jobs_router.get(
    "/jobs/{job_id}/result",
    name="job_result",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The MP4."},
        206: {"content": {"video/mp4": {}}, "description": "Part of the MP4 (Range)."},
        307: {
            "description": "With S3 storage and MCNET_RESULT_REDIRECT on: `Location` is a "
            "presigned URL of the MP4 (Range requests work there too), valid for "
            "MCNET_RESULT_URL_TTL seconds."
        },
        404: {"model": ErrorBody, "description": "No such job, or its result expired."},
        409: {"model": ErrorBody, "description": "The job has not finished."},
        416: {"model": ErrorBody, "description": "The range is past the end."},
    },
    summary="Download the result MP4 (Range requests supported)",
)
async def job_result(
    job_id: str, request: Request, services: ServicesDep, owner: OwnerDep
) -> Response:
    """The MP4 of a finished job; `Range: bytes=a-b` answers 206 with that part."""
    await run_in_threadpool(check_owner, services, owner, job_id)
    info = await run_in_threadpool(services.jobs.info, job_id)
    if info.status is not JobState.FINISHED:
        raise JobStateError(_no_result_yet(info))
    key = result_key(job_id)
    size = await run_in_threadpool(services.storage.size, key)
    if size is None:
        raise ResultGoneError("The result of this job has expired or was removed.")
    if services.result_redirect_ttl is not None:
        url = await run_in_threadpool(
            services.storage.presigned_url, key, services.result_redirect_ttl, f"{job_id}.mp4"
        )
        if url is not None:
            return RedirectResponse(url, 307, headers={"Cache-Control": "no-store"})
    return await _send_file(request, key, size, job_id, services.storage)


def _no_result_yet(info: JobInfo) -> str:
    """Why a job that has not finished has no result."""
    if info.status is JobState.CANCELED:
        return "The job was canceled; there is no result."
    if info.status is JobState.FAILED:
        reason = f" ({info.error})" if info.error else ""
        return f"The job failed{reason}; there is no result."
    return f"The job is {info.status.value}; the result exists once it has finished."


@jobs_router.delete(
    "/jobs/{job_id}",
    status_code=202,
    response_model=JobBody,
    responses={
        **_NOT_FOUND,
        409: {"model": ErrorBody, "description": "The job has already finished or failed."},
    },
    summary="Cancel a job",
)
async def cancel_job(
    job_id: str, request: Request, services: ServicesDep, owner: OwnerDep
) -> JobBody:
    """A queued job never runs; a running one stops between frame batches."""
    await run_in_threadpool(check_owner, services, owner, job_id)
    info = await run_in_threadpool(services.jobs.cancel, job_id)
    return job_body(request, info)


@health_router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@health_router.get("/stages", summary="The stages of a job, in the order they come")
async def stages() -> list[StageBody]:
    """Each stage `progress.stage` can take, with a label for people."""
    return [StageBody(stage=stage, label=stage.label) for stage in Stage]


@health_router.get(
    "/readyz",
    summary="Redis reachable, storage usable, and at least one worker alive",
    responses={503: {"description": "Not ready; `detail` says why."}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when jobs can be queued and run; 503 with the reason otherwise."""
    return await run_in_threadpool(_readiness, services)


@health_router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={503: KEYED_RESPONSES[503]},
)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text format."""
    body = await run_in_threadpool(generate_latest, services.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _readiness(services: Services) -> JSONResponse:
    jobs, storage = services.jobs, services.storage
    state: dict[str, Any] = {"redis": jobs.ping(), "workers": 0, "storage": True}
    problems = []
    if state["redis"]:
        models = jobs.live_models()
        state["workers"] = len(models)
        state["models"] = sorted(set(models))  # checkpoint name and sha256 prefix, or "demo"
        state["demo"] = DEMO_MODEL in models
        if state["workers"] < 1:
            problems.append("no worker is alive")
    else:
        problems.append("Redis cannot be reached")
    try:
        storage.check()
        if services.spool_dir is not None:
            check_writable(services.spool_dir)
    except StorageError as exc:
        state["storage"] = False
        logger.warning("not ready: %s", exc)  # the path stays in the log, not in the answer
        problems.append("storage is not writable (unavailable, read-only or full)")
    if problems:
        return JSONResponse({"detail": "Not ready: " + "; ".join(problems) + ".", **state}, 503)
    return JSONResponse({"status": "ready", **state})


async def _send_file(
    request: Request, key: str, size: int, job_id: str, storage: Storage
) -> Response:
    etag = f'"{job_id}"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Content-Disposition": f'inline; filename="{job_id}.mp4"',
        "Cache-Control": "private, max-age=3600",
    }
    if_range = request.headers.get("if-range")
    header = request.headers.get("range") if if_range in (None, etag) else None
    try:
        span = parse_range(header, size)
    except RangeNotSatisfiableError as exc:
        exc.headers = {**headers, **exc.headers}
        raise
    start, end = span if span is not None else (0, size - 1)
    status = 206 if span is not None else 200
    headers["Content-Length"] = str(end - start + 1)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers, media_type="video/mp4")
    chunks = await run_in_threadpool(storage.iter_range, key, start, end)
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type="video/mp4")
