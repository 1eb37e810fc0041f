"""The routes of a key's jobs: submit, status, result (with Range), cancel, the caller's
list of jobs and a job's progress events.

Routes read the app's services through `ServicesDep`; failures are domain errors that
carry their HTTP status (core.errors), answered by the app's one exception handler.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from core.errors import (
    InvalidRequestError,
    JobStateError,
    RangeNotSatisfiableError,
    ResultGoneError,
)
from core.estimate import long_job_warning
from core.idempotency import check_idempotency_key
from core.job_view import JobView, Links
from core.protocol import JobState
from core.storage import Storage, result_key
from service.deps import (
    OwnerDep,
    Services,
    ServicesDep,
    check_owner,
    limit_requests,
    require_key,
)
from service.ranges import parse_range
from service.routes.responses import ERRORS, KEYED_RESPONSES, NOT_FOUND, RETRY_AFTER, accepted
from service.schemas import (
    ErrorBody,
    JobList,
    SubmitResponse,
    animate_request_schema,
    event_schema,
)
from service.submit import replayed_job, submit_job

KEEPALIVE_SECONDS = 15.0
FILTER_SCAN = 1000  # most jobs one filtered page of GET /jobs reads
# A cursor is a submit time (seconds, as `next_cursor` gives it out; empty: the first page)
CURSOR_PATTERN = r"^([0-9]{1,12}(\.[0-9]{1,20})?)?$"

jobs_router = APIRouter(
    dependencies=[Depends(require_key), Depends(limit_requests)], responses=KEYED_RESPONSES
)


def _links(request: Request, job_id: str) -> Links:
    root = request.scope.get("root_path", "")
    return Links(
        self=root + request.app.url_path_for("job_status", job_id=job_id),
        result=root + request.app.url_path_for("job_result", job_id=job_id),
        events=root + request.app.url_path_for("job_events", job_id=job_id),
    )


def job_view(request: Request, info: JobView) -> JobView:
    """The job as the API answers it: with its links, and its result's URL once finished."""
    links = _links(request, info.id)
    result_url = links.result if info.status is JobState.FINISHED else None
    return info.model_copy(update={"links": links, "result_url": result_url})


@jobs_router.post(
    "/animate",
    status_code=202,
    response_model=SubmitResponse,
    responses={
        **accepted("job"),
        404: {
            "model": ErrorBody,
            "description": "No such motion template (`template`): unknown, expired, deleted "
            "or another key's.",
        },
        409: {
            "model": ErrorBody,
            "description": "A submit with this Idempotency-Key is still being checked and "
            "queued (retry after `Retry-After` seconds to get its job), or the motion template "
            "(`template`) is still being made or failed to be made.",
            "headers": RETRY_AFTER,
        },
        **ERRORS,
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
    """Queue a job: multipart/form-data with `source` (photo), `driving` (video) or
    `template` (the id of a finished motion template of yours, instead of the video), and
    any option fields. Answers 202 with the job id; follow `links.self` or `links.events`."""
    key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
    retry = key is not None and await run_in_threadpool(services.idempotency.known, owner, key)
    if not retry:  # a retried submit gets its first job back, whatever the limit
        await run_in_threadpool(services.limits.check_jobs, owner)
    job_id, replayed = await submit_job(request, services, owner, key)
    links = _links(request, job_id)
    response.headers["Location"] = links.self
    if replayed:  # its job may still be being created: 409 + Retry-After, never a 404
        info = await run_in_threadpool(replayed_job, services, job_id)
        response.headers["Idempotent-Replayed"] = "true"
    else:
        info = await run_in_threadpool(services.jobs.info, job_id)
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
    response_model=JobView,
    responses=NOT_FOUND,
    summary="Status and progress of a job",
)
async def job_status(
    job_id: str, request: Request, services: ServicesDep, owner: OwnerDep
) -> JobView:
    """State (queued, started, finished, failed, canceled), progress, times, options."""
    await run_in_threadpool(check_owner, services, owner, job_id)
    info = await run_in_threadpool(services.jobs.info, job_id)
    return job_view(request, info)


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


def _no_result_yet(info: JobView) -> str:
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
    response_model=JobView,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorBody, "description": "The job has already finished or failed."},
    },
    summary="Cancel a job",
)
async def cancel_job(
    job_id: str, request: Request, services: ServicesDep, owner: OwnerDep
) -> JobView:
    """A queued job never runs; a running one stops between frame batches."""
    await run_in_threadpool(check_owner, services, owner, job_id)
    info = await run_in_threadpool(services.jobs.cancel, job_id)
    return job_view(request, info)


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


def _owned_jobs(
    services: Services, owner: str, status: JobState | None, limit: int, cursor: str | None
) -> tuple[list[JobView], str | None]:
    """Up to `limit` of the owner's jobs (in `status`, filtered before paging), newest
    first, and the cursor after the last one (None on the last page); a filtered page reads
    at most FILTER_SCAN jobs, then ends early with a cursor to go on from."""
    listed: list[JobView] = []
    scanned = 0
    while True:
        try:
            page = services.owners.page(owner, limit, cursor)
        except ValueError as exc:
            raise InvalidRequestError(
                "The cursor is not one this service gave out; pass `next_cursor` as it came."
            ) from exc
        infos = services.jobs.infos(page.job_ids)
        services.owners.forget(owner, [job_id for job_id in page.job_ids if job_id not in infos])
        scanned += len(page.job_ids)
        for job_id, after in zip(page.job_ids, page.cursors, strict=True):
            info = infos.get(job_id)
            if info is not None and (status is None or info.status is status):
                listed.append(info)
                if len(listed) == limit:
                    more = after != page.cursors[-1] or (
                        page.cursor is not None
                        and bool(services.owners.page(owner, 1, after).job_ids)
                    )
                    return listed, after if more else None
        if page.cursor is None:
            return listed, None
        cursor = page.cursor
        if scanned >= FILTER_SCAN:
            return listed, cursor


@jobs_router.get(
    "/jobs",
    response_model=JobList,
    responses={422: {"model": ErrorBody, "description": "A malformed cursor or filter."}},
    summary="The caller's jobs, newest first",
)
async def list_jobs(
    request: Request,
    services: ServicesDep,
    owner: OwnerDep,
    status: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the last page.", pattern=CURSOR_PATTERN),
    ] = None,
) -> JobList:
    """Jobs made with the caller's API key (every job when the service has no keys),
    newest first, as long as Redis keeps them."""
    infos, next_cursor = await run_in_threadpool(
        _owned_jobs, services, owner, status, limit, cursor
    )
    return JobList(jobs=[job_view(request, info) for info in infos], next_cursor=next_cursor)


def _event(request: Request, info: JobView) -> str:
    body = job_view(request, info).model_dump_json()
    return f"event: {'end' if info.ended else 'progress'}\ndata: {body}\n\n"


@jobs_router.get(
    "/jobs/{job_id}/events",
    name="job_events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": event_schema()}},
            "description": "Server-Sent Events: `progress` each time the job changes (its "
            "data: the job JSON with `queue_position`), then one `end` with the final job "
            "JSON, after which the stream closes. Comment lines keep the connection alive.",
        },
        404: {"model": ErrorBody, "description": "No such job."},
    },
    summary="Live progress of a job (Server-Sent Events)",
)
async def job_events(
    job_id: str, request: Request, services: ServicesDep, owner: OwnerDep
) -> StreamingResponse:
    """Stage, frames done and total, queue position while waiting, and the final status."""
    await run_in_threadpool(check_owner, services, owner, job_id)
    await run_in_threadpool(services.jobs.info, job_id)  # 404 before the stream starts
    watcher = services.watcher

    async def stream() -> AsyncIterator[str]:
        last = ""
        async for snapshot in watcher.watch(job_id, KEEPALIVE_SECONDS):
            if snapshot is None:
                yield ": keepalive\n\n"
                continue
            if snapshot.info is None:  # expired while watched
                return
            text = _event(request, snapshot.info)
            if text != last:
                yield text
                last = text

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
