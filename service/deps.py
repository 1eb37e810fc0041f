"""What the routes depend on: the app's services (made once by `create_app`, kept on
`app.state`) and the API-key check, as `Annotated` dependencies."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from core.errors import UnauthorizedError
from core.jobs import JobQueue
from core.media_probe import MediaLimits
from core.storage import Storage
from service.metrics import ApiMetrics
from service.uploads import FormLimits


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once per app by the app factory."""

    jobs: JobQueue
    storage: Storage
    metrics: ApiMetrics
    registry: CollectorRegistry
    api_keys: tuple[bytes, ...]
    media_limits: MediaLimits
    form_limits: FormLimits
    spool_dir: Path | None
    upload_slots: asyncio.Semaphore  # uploads received at once
    max_queued_jobs: int  # 0: no cap
    max_frames_per_key: int  # per hour; 0: no cap
    probe_slots: asyncio.Semaphore  # uploads probed at once (the photo's pixels)


def get_services(request: Request) -> Services:
    """The services of the app serving `request`."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_BEARER = HTTPBearer(auto_error=False, description="An API key, when the service has them.")


def require_key(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> None:
    """The request carries one of the API keys (when any are configured)."""
    if not services.api_keys:
        return
    given = credentials.credentials.encode() if credentials is not None else b""
    if not any(hmac.compare_digest(given, key) for key in services.api_keys):
        raise UnauthorizedError("Missing or unknown API key: send `Authorization: Bearer <key>`.")
