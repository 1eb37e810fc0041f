"""The caller's jobs: `GET /jobs` (newest first, paged, by status) and
`GET /jobs/{id}/events` (Server-Sent Events of one job's progress until it ends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from core.errors import InvalidRequestError
from core.jobs import JobInfo
from core.protocol import JobState
from service.deps import OwnerDep, Services, ServicesDep, check_owner, require_key
from service.events import JobWatcher
from service.ratelimit import limit_requests
from service.routes import KEYED_RESPONSES, job_body
from service.schemas import ErrorBody, JobEvent, JobList, event_schema

KEEPALIVE_SECONDS = 15.0
FILTER_SCAN = 1000  # most jobs one filtered page of GET /jobs reads
# A cursor is a submit time (seconds, as `next_cursor` gives it out; empty: the first page)
CURSOR_PATTERN = r"^([0-9]{1,12}(\.[0-9]{1,20})?)?$"

owned_router = APIRouter(
    dependencies=[Depends(require_key), Depends(limit_requests)], responses=KEYED_RESPONSES
)


def _owned_jobs(
    services: Services, owner: str, status: JobState | None, limit: int, cursor: str | None
) -> tuple[list[JobInfo], str | None]:
    """Up to `limit` of the owner's jobs (in `status`, filtered before paging), newest
    first, and the cursor after the last one; a filtered page reads at most
    FILTER_SCAN jobs, then ends early with a cursor to go on from."""
    listed: list[JobInfo] = []
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


@owned_router.get(
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
    return JobList(jobs=[job_body(request, info) for info in infos], next_cursor=next_cursor)


def _event(request: Request, info: JobInfo) -> str:
    body = JobEvent(**job_body(request, info).model_dump())
    ended = info.status in (JobState.FINISHED, JobState.FAILED, JobState.CANCELED)
    return f"event: {'end' if ended else 'progress'}\ndata: {body.model_dump_json()}\n\n"


@owned_router.get(
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
    watcher: JobWatcher = request.app.state.watcher

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
