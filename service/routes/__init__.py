"""The HTTP routes, one module per resource (`jobs`, `templates`, `health`), and the one
place they are attached to an app (`include_routes`)."""

from __future__ import annotations

from fastapi import FastAPI

from service.routes.health import health_router
from service.routes.jobs import jobs_router
from service.routes.templates import templates_router


def include_routes(app: FastAPI) -> None:
    """Attach every resource's routes to `app`."""
    app.include_router(jobs_router)
    app.include_router(templates_router)
    app.include_router(health_router)
