"""The FastAPI application factory: `create_app(settings)`.

Everything the app uses (Redis connection, storage, metrics registry) is made here and
kept on `app.state.services`, which the routes depend on, so several apps (tests) never
share state. Errors are always
`{"detail": "..."}`: domain errors of bad input map to 4xx, an unreachable Redis or
store to 503, anything else to 500 without internals.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from redis import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import MCNetError, RateLimitedError, ServiceUnavailableError
from core.idempotency import IdempotencyStore
from core.jobs import JobQueue
from core.keys import parse_api_keys
from core.logs import log_fields
from core.options import JobOptions
from core.ownership import JobOwners
from core.protocol import job_timeout
from core.ratelimit import KeyLimits
from core.settings import ApiSettings
from core.storage import FileStorage, Storage, StorageError, open_storage
from core.templates import TemplateStore
from core.webhooks import WEBHOOK_FIELDS, parse_networks
from service.admission import UploadSlots
from service.api_docs import mount_api_docs
from service.deps import Services
from service.events import JobWatcher
from service.gate import KeyGate, gated_paths
from service.methods import AllowedMethods
from service.metrics import ApiMetrics, QueueCollector, TemplateCollector
from service.routes import include_routes
from service.store_health import StoreHealth
from service.uploads import FormLimits
from service.web import mount_web

logger = logging.getLogger(__name__)

DESCRIPTION = """
Animate a portrait photo with a driving talking-head video (MCNet, ICCV 2023).

1. `POST /animate` with `source` (photo) and `driving` (video) as multipart/form-data,
   plus any options: answers `202` with the job id.
2. `GET /jobs/{id}` until `status` is `finished` (or `failed`, `canceled`); `progress`
   tells the stage and the frames done.
3. `GET /jobs/{id}/result`: the MP4 (Range requests supported).

`DELETE /jobs/{id}` cancels. Errors are `{"detail": "..."}`.

Motion templates: `POST /templates` with a driving video extracts its motion once
(`GET /templates/{id}` until `finished`); `POST /animate` with `template=<id>` instead of
`driving` then animates any number of photos with it, to the same pixels, without the video.

For programs: `GET /jobs/{id}/events` streams progress (Server-Sent Events) until the job
ends; `GET /jobs` lists the caller's jobs (with API keys, a job is visible only to the key
that made it); an `Idempotency-Key` header makes a retried submit return the first job;
`webhook` and `webhook_events` fields ask for signed callbacks (Standard Webhooks:
`webhook-id`, `webhook-timestamp`, `webhook-signature`); keys may be limited in requests
per minute and jobs at once (429 with `Retry-After`); with S3 storage the result may be a
307 redirect to a presigned URL.
"""


def spool_folder(settings: ApiSettings, storage: Storage) -> Path | None:
    """Where uploads wait while they are checked: MCNET_SPOOL_DIR, else (file://) a folder
    inside the storage root, so that accepting an upload is a rename, not a copy."""
    if settings.spool_dir is not None:
        folder = Path(settings.spool_dir)
    elif isinstance(storage, FileStorage):
        folder = storage.root / ".spool"
    else:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logger.warning("spool folder %s unusable (%s); using the temp folder", folder, exc)
        return None
    return folder


def job_retention(settings: ApiSettings) -> int:
    """Seconds a job can be known to Redis: waiting inputs, the longest job, its result."""
    longest = job_timeout(
        settings.max_video_frames, settings.job_timeout_base, settings.job_timeout_per_frame
    )
    return settings.input_ttl + longest + max(settings.result_ttl, settings.failure_ttl)


class MetricsMiddleware:
    """Counts requests and their latency by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route).observe(
                time.perf_counter() - started
            )


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


class RequestIdMiddleware:
    """Every request gets an id: its `X-Request-ID` when it sends a sane one (letters,
    digits, `._:@/+=-`, at most 128), else a new one. The id is answered in `X-Request-ID`,
    is a field of every log line of the request (core.logs), and is stored with a job it
    submits (the worker's lines and the job's webhooks carry it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with log_fields(request_id=request_id):
            await self.app(scope, receive, with_id)


async def error_response(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler: a domain error answers its own status and message (a
    limit's refusal counted by its reason); an unreachable Redis or store 503; anything
    else 500 without internals."""
    if isinstance(exc, RateLimitedError):
        metrics: ApiMetrics = request.app.state.services.metrics
        metrics.rate_limited.labels(exc.key, exc.reason.value).inc()
    if isinstance(exc, MCNetError) and exc.status < 500:
        logger.info("refused (%d): %s", exc.status, exc)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)
    if isinstance(exc, ServiceUnavailableError):
        logger.warning(
            "unavailable (503): %s%s", exc, f" ({exc.__cause__})" if exc.__cause__ else ""
        )
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)
    if isinstance(exc, RedisError | StorageError):
        logger.error("backend unavailable: %s", exc)
        return JSONResponse(
            {"detail": "The job queue or the file store is unavailable; try again shortly."},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    logger.error("unexpected error", exc_info=exc)
    return JSONResponse({"detail": "Internal error."}, status_code=500)


async def invalid_request_response(_: Request, exc: Exception) -> JSONResponse:
    """A parameter or header FastAPI refused: 422 with one sentence, like every error."""
    problems = []
    for error in exc.errors() if isinstance(exc, RequestValidationError) else ():
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    detail = "Invalid request: " + ("; ".join(problems) or "malformed") + "."
    logger.info("refused (422): %s", detail)
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(
    settings: ApiSettings,
    *,
    redis: Redis | None = None,
    storage: Storage | None = None,
) -> FastAPI:
    """Build the API. `redis`/`storage` override the ones the settings name (tests)."""
    if redis is None:
        if not settings.redis_url:
            raise ValueError("REDIS_URL is not set (or use `mcnet serve`, which starts Redis)")
        # A stalled Redis (paused, partitioned) answers 503 after a few seconds, not never.
        redis = Redis.from_url(
            settings.redis_url,
            health_check_interval=30,
            socket_timeout=10,
            socket_connect_timeout=5,
        )
    if storage is None:
        storage = open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url)
    jobs = JobQueue(redis, settings)
    spool_dir = spool_folder(settings, storage)
    store_health = StoreHealth(storage, spool_dir)
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)
    registry.register(
        QueueCollector(
            jobs.depth, jobs.counts, jobs.live_workers, jobs.worker_starts, store_health.usable
        )
    )
    templates = TemplateStore(
        redis, settings.queue_name, settings.template_ttl, job_retention(settings)
    )
    registry.register(TemplateCollector(templates.made_counts, templates.stored_bytes))
    app = FastAPI(
        title="MCNet talking-head animation",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,  # served from installed assets (service.api_docs), not a CDN
        redoc_url=None,
    )
    mount_api_docs(app)
    api_keys = parse_api_keys(settings.api_keys)
    owners = JobOwners(redis, settings.queue_name, job_retention(settings))
    app.state.services = Services(
        jobs=jobs,
        storage=storage,
        metrics=metrics,
        registry=registry,
        api_keys=api_keys,
        owners=owners,
        idempotency=IdempotencyStore(redis, settings.queue_name, job_retention(settings)),
        limits=KeyLimits(
            redis,
            jobs,
            owners,
            settings.rate_limit_per_minute,
            settings.max_concurrent_jobs,
            max_queued_jobs=settings.max_queued_jobs,
            frames_per_hour=settings.max_frames_per_key if api_keys else 0,
            templates=templates,
            template_bytes=settings.template_storage_per_key,
        ),
        media_limits=settings.media_limits(),
        form_limits=FormLimits(
            files={"source": settings.max_image_bytes, "driving": settings.max_video_bytes},
            fields=frozenset(JobOptions.model_fields) | WEBHOOK_FIELDS | {"template"},
            idle_timeout=settings.upload_idle_timeout,
            min_rate=settings.upload_min_rate,
        ),
        templates=templates,
        template_idempotency=IdempotencyStore(
            redis, f"{settings.queue_name}:templates", job_retention(settings)
        ),
        template_form_limits=FormLimits(
            files={"driving": settings.max_video_bytes},
            fields=frozenset({"crop"}),
            idle_timeout=settings.upload_idle_timeout,
            min_rate=settings.upload_min_rate,
        ),
        spool_dir=spool_dir,
        store_health=store_health,
        upload_slots=UploadSlots(settings.max_concurrent_uploads, settings.max_uploads_per_client),
        probe_slots=asyncio.Semaphore(settings.max_concurrent_probes),
        webhook_networks=(
            parse_networks(settings.webhook_allowed_networks)
            if settings.webhook_secret is not None
            else None
        ),
        result_redirect_ttl=settings.result_url_ttl if settings.result_redirect else None,
        long_job_warning=settings.long_job_warning,
        watcher=JobWatcher(jobs, metrics, settings.events_interval),
    )
    include_routes(app)
    mount_web(app)
    app.add_middleware(AllowedMethods, openapi=app.openapi)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(
        KeyGate,
        keys=api_keys,
        paths=gated_paths(settings.metrics_public, settings.docs_public),
    )
    app.add_middleware(RequestIdMiddleware)
    for caught in (MCNetError, RedisError, StorageError, Exception):
        app.add_exception_handler(caught, error_response)
    app.add_exception_handler(RequestValidationError, invalid_request_response)
    return app
