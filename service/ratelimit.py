"""The per-key request limit as a route dependency (limits: core.ratelimit)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from core.errors import RateLimitedError
from service.deps import OwnerDep, ServicesDep


async def limit_requests(services: ServicesDep, owner: OwnerDep) -> None:
    """Count the request against its key's requests per minute (429 when over)."""
    try:
        await run_in_threadpool(services.limits.count_request, owner)
    except RateLimitedError:
        services.metrics.rate_limited.labels(owner, "requests").inc()
        raise
