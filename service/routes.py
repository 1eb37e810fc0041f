"""The HTTP routes: submit, status, result (with Range), cancel, health, metrics."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from service.jobs import JobEndedError, JobInfo, JobState
from service.ranges import RangeNotSatisfiableError, parse_range
from service.schemas import (
    ErrorBody,
    JobBody,
    Links,
    ProgressBody,
    SubmitResponse,
    animate_request_schema,
)
from service.storage import StorageError, result_key
from service.submit import SubmitContext, submit_job

logger = logging.getLogger(__name__)

_ID_HINT = "job ids are UUIDs such as 123e4567-e89b-42d3-a456-426614174000"


@dataclass(frozen=True)
class RouteContext:
    """Everything the routes use, built once by the app factory."""

    submit: SubmitContext
    registry: CollectorRegistry
    api_keys: tuple[str, ...]


def _links(request: Request, job_id: str) -> Links:
    root = request.scope.get("root_path", "")
    return Links(
        self=root + request.app.url_path_for("job_status", job_id=job_id),
        result=root + request.app.url_path_for("job_result", job_id=job_id),
    )


def _job_body(request: Request, info: JobInfo) -> JobBody:
    links = _links(request, info.id)
    return JobBody(
        id=info.id,
        status=info.status.value,
        progress=ProgressBody(**info.progress.as_dict()),
        created_at=info.created_at,
        started_at=info.started_at,
        ended_at=info.ended_at,
        error=info.error,
        options=info.options,
        precision=info.precision,
        result_url=links.result if info.status is JobState.FINISHED else None,
        links=links,
    )


def _not_found(job_id: str) -> HTTPException:
    shown = job_id if len(job_id) <= 64 else job_id[:64] + "..."
    return HTTPException(404, f"No job with id {shown!r} ({_ID_HINT}); it may have expired.")


_BEARER = HTTPBearer(auto_error=False, description="An API key, when the service has them.")


class KeyCheck:
    """Dependency: the request carries one of the API keys (when any are configured)."""

    def __init__(self, api_keys: tuple[str, ...]) -> None:
        self.api_keys = tuple(key.encode() for key in api_keys)

    def __call__(
        self, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ) -> None:
        if not self.api_keys:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        if not any(hmac.compare_digest(given, key) for key in self.api_keys):
            raise HTTPException(
                401,
                "Missing or unknown API key: send `Authorization: Bearer <key>`.",
                headers={"WWW-Authenticate": "Bearer"},
            )


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Malformed multipart body.",
        401: "Missing or unknown API key.",
        413: "A file, its pixel count, frame count or duration is over a limit.",
        415: "Not a usable image or video (wrong kind, empty, damaged, truncated).",
        422: "Missing parts, unknown fields, or invalid options.",
    }.items()
}


def build_router(ctx: RouteContext) -> APIRouter:
    """All routes, closed over `ctx` (no global state)."""
    router = APIRouter()
    secured = [Depends(KeyCheck(ctx.api_keys))]
    jobs, storage = ctx.submit.jobs, ctx.submit.storage

    @router.post(
        "/animate",
        status_code=202,
        response_model=SubmitResponse,
        dependencies=secured,
        responses=_ERRORS,
        openapi_extra={"requestBody": animate_request_schema()},
        summary="Animate a photo with a driving video",
    )
    async def animate(request: Request, response: Response) -> SubmitResponse:
        """Queue a job: multipart/form-data with `source` (photo), `driving` (video) and
        any option fields. Answers 202 with the job id; poll `links.self`."""
        job_id = await submit_job(request, ctx.submit)
        links = _links(request, job_id)
        response.headers["Location"] = links.self
        return SubmitResponse(id=job_id, status=JobState.QUEUED.value, links=links)

    @router.get(
        "/jobs/{job_id}",
        name="job_status",
        response_model=JobBody,
        dependencies=secured,
        responses={404: {"model": ErrorBody, "description": "No such job."}},
        summary="Status and progress of a job",
    )
    async def job_status(job_id: str, request: Request) -> JobBody:
        """State (queued, started, finished, failed, canceled), progress, times, options."""
        info = await run_in_threadpool(jobs.info, job_id)
        if info is None:
            raise _not_found(job_id)
        return _job_body(request, info)

    @router.head("/jobs/{job_id}/result", dependencies=secured, include_in_schema=False)
    @router.get(
        "/jobs/{job_id}/result",
        name="job_result",
        dependencies=secured,
        response_class=Response,
        responses={
            200: {"content": {"video/mp4": {}}, "description": "The MP4."},
            206: {"content": {"video/mp4": {}}, "description": "Part of the MP4 (Range)."},
            404: {"model": ErrorBody, "description": "No such job, or its result expired."},
            409: {"model": ErrorBody, "description": "The job has not finished."},
            416: {"model": ErrorBody, "description": "The range is past the end."},
        },
        summary="Download the result MP4 (Range requests supported)",
    )
    async def job_result(job_id: str, request: Request) -> Response:
        """The MP4 of a finished job; `Range: bytes=a-b` answers 206 with that part."""
        info = await run_in_threadpool(jobs.info, job_id)
        if info is None:
            raise _not_found(job_id)
        if info.status is not JobState.FINISHED:
            reason = f" ({info.error})" if info.error else ""
            raise HTTPException(
                409,
                f"The job is {info.status.value}{reason}; the result exists once it has finished.",
            )
        key = result_key(job_id)
        size = await run_in_threadpool(storage.size, key)
        if size is None:
            raise HTTPException(404, "The result of this job has expired or was removed.")
        return await _send_file(request, key, size, job_id, storage)

    @router.delete(
        "/jobs/{job_id}",
        status_code=202,
        response_model=JobBody,
        dependencies=secured,
        responses={
            404: {"model": ErrorBody, "description": "No such job."},
            409: {"model": ErrorBody, "description": "The job has already finished or failed."},
        },
        summary="Cancel a job",
    )
    async def cancel_job(job_id: str, request: Request) -> JobBody:
        """A queued job never runs; a running one stops between frame batches."""
        try:
            info = await run_in_threadpool(jobs.cancel, job_id)
        except JobEndedError as exc:
            raise HTTPException(409, str(exc).capitalize() + ".") from exc
        if info is None:
            raise _not_found(job_id)
        return _job_body(request, info)

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        """Always 200 while the process serves requests."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Redis reachable, storage usable, and at least one worker alive",
        responses={503: {"description": "Not ready; `detail` says why."}},
    )
    async def readyz() -> JSONResponse:
        """200 when jobs can be queued and run; 503 with the reason otherwise."""
        return await run_in_threadpool(_readiness, ctx)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format."""
        body = await run_in_threadpool(generate_latest, ctx.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router


def _readiness(ctx: RouteContext) -> JSONResponse:
    jobs, storage = ctx.submit.jobs, ctx.submit.storage
    state: dict[str, Any] = {"redis": jobs.ping(), "workers": 0, "storage": True}
    problems = []
    if state["redis"]:
        state["workers"] = jobs.live_workers()
        if state["workers"] < 1:
            problems.append("no worker is alive")
    else:
        problems.append("Redis cannot be reached")
    try:
        storage.check()
    except StorageError as exc:
        state["storage"] = False
        problems.append(str(exc))
    if problems:
        return JSONResponse({"detail": "Not ready: " + "; ".join(problems) + ".", **state}, 503)
    return JSONResponse({"status": "ready", **state})


async def _send_file(request: Request, key: str, size: int, job_id: str, storage: Any) -> Response:
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
    except RangeNotSatisfiableError:
        return JSONResponse(
            {"detail": f"The range {header!r} is past the end of the file ({size} bytes)."},
            status_code=416,
            headers={"Content-Range": f"bytes */{size}", **headers},
        )
    start, end = span if span is not None else (0, size - 1)
    status = 206 if span is not None else 200
    headers["Content-Length"] = str(end - start + 1)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers, media_type="video/mp4")
    chunks = await run_in_threadpool(storage.iter_range, key, start, end)
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type="video/mp4")
