"""The per-key request limit as a route dependency (limits: core.ratelimit)."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from core.errors import RateLimitedError
from service.deps import OwnerDep, ServicesDep


async def limit_requests(request: Request, services: ServicesDep, owner: OwnerDep) -> None:
    """Count the request against its key's requests per minute (429 when over). A cancel
    (DELETE) is never refused: a key at its limit can still stop its own jobs."""
    if request.method == "DELETE":
        return
    try:
        await run_in_threadpool(services.limits.count_request, owner)
    except RateLimitedError:
        services.metrics.rate_limited.labels(owner, "requests").inc()
        raise
