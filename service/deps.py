"""What the routes depend on: the app's services (made once by `create_app`, kept on
`app.state`) and the API-key check, as `Annotated` dependencies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from core.errors import JobNotFoundError
from core.idempotency import IdempotencyStore
from core.jobs import JobQueue
from core.keys import ApiKey
from core.logs import set_log_field
from core.media_probe import MediaLimits
from core.ownership import JobOwners
from core.ratelimit import KeyLimits
from core.storage import Storage
from core.templates import TemplateStore
from core.webhooks import Network
from service.admission import UploadSlots
from service.events import JobWatcher
from service.gate import request_key
from service.metrics import ApiMetrics
from service.store_health import StoreHealth
from service.uploads import FormLimits


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once per app by the app factory."""

    jobs: JobQueue
    storage: Storage
    metrics: ApiMetrics
    registry: CollectorRegistry
    api_keys: tuple[ApiKey, ...]
    owners: JobOwners
    idempotency: IdempotencyStore
    limits: KeyLimits
    media_limits: MediaLimits
    form_limits: FormLimits
    spool_dir: Path | None
    upload_slots: UploadSlots  # uploads received at once, in total and by client
    probe_slots: asyncio.Semaphore  # uploads probed at once (the photo's pixels)
    webhook_networks: tuple[Network, ...] | None  # None: no webhook secret, no webhooks
    watcher: JobWatcher  # the one poller of the jobs whose progress events are streamed
    store_health: StoreHealth  # whether the store and spool can be written (submit, readyz)
    templates: TemplateStore  # the keys' motion templates (POST /templates)
    template_idempotency: IdempotencyStore  # Idempotency-Keys of POST /templates
    template_form_limits: FormLimits  # the parts of POST /templates
    result_redirect_ttl: int | None = None  # seconds of a presigned result URL; None: stream
    long_job_warning: float = 0  # seconds of estimated time over which a submit warns; 0: never


def get_services(request: Request) -> Services:
    """The services of the app serving `request`."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_BEARER = HTTPBearer(auto_error=False, description="An API key, when the service has them.")


def require_key(
    request: Request,
    services: ServicesDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],  # OpenAPI's scheme
) -> str:
    """The name of the request's API key, as the key gate (service.gate) found it:
    ANONYMOUS when no keys are configured; 401 when keys are on and it carries none. The
    name becomes a field of the request's log lines (core.logs)."""
    name = request_key(request, services.api_keys)
    if services.api_keys:
        set_log_field("key", name)
    return name


OwnerDep = Annotated[str, Depends(require_key)]


def check_owner(services: Services, owner: str, job_id: str) -> None:
    """JobNotFoundError (404, never 403: ids leak nothing) unless `owner` made the job;
    every caller sees every job when no keys are configured."""
    if services.api_keys and not services.owners.owns(owner, job_id):
        raise JobNotFoundError(job_id)


async def limit_requests(request: Request, services: ServicesDep, owner: OwnerDep) -> None:
    """Count the request against its key's requests per minute (429 when over). A cancel
    (DELETE) is never refused: a key at its limit can still stop its own jobs."""
    if request.method == "DELETE":
        return
    await run_in_threadpool(services.limits.count_request, owner)
