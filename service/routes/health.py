"""The operator's routes: liveness, readiness, the stages of a job, Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from core.protocol import DEMO_MODEL, Stage
from service.deps import Services, ServicesDep
from service.routes.responses import KEYED_RESPONSES
from service.schemas import StageBody

logger = logging.getLogger(__name__)

health_router = APIRouter()


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
    summary="This API can accept jobs: Redis reachable, storage usable",
    responses={503: {"description": "Not ready; `detail` says why."}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when jobs can be queued, 503 with the reason otherwise. Workers do not count:
    with none (scaled to zero) jobs wait in the queue; `workers` and
    `workers_available` (and the `mcnet_workers_alive` metric) say how many are live."""
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
    jobs = services.jobs
    state: dict[str, Any] = {"redis": jobs.ping(), "workers": 0, "storage": True}
    problems = []
    if state["redis"]:
        workers = jobs.worker_states()
        models = [worker.model for worker in workers if worker.problem is None]
        state["workers"] = len(models)  # alive and taking jobs
        state["models"] = sorted(set(models))  # checkpoint name and sha256 prefix, or "demo"
        state["demo"] = DEMO_MODEL in models
        state["workers_not_taking_jobs"] = {w.name: w.problem for w in workers if w.problem}
    else:
        problems.append("Redis cannot be reached")
    if services.store_health.problem() is not None:  # the path stays in the log
        state["storage"] = False
        problems.append("storage is not writable (unavailable, read-only or full)")
    # Readiness of this API only: jobs submitted with no live worker wait in the queue
    # (an autoscaler starts one on the queue's length).
    state["workers_available"] = state["workers"] > 0
    if problems:
        return JSONResponse({"detail": "Not ready: " + "; ".join(problems) + ".", **state}, 503)
    return JSONResponse({"status": "ready", **state})
