"""The routes of a key's motion templates: create (from a driving video), status, the
caller's list, delete.

A template belongs to the key that made it (404 to every other key, as a job). Its state
is its extraction's until a worker has made it (core.templates); POST /animate with
`template=<id>` then animates photos with it (service.submit).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from core.errors import StorageUnavailableError, TemplateNotFoundError
from core.idempotency import check_idempotency_key
from core.storage import StorageError, template_key
from core.template_view import TemplateLinks, TemplateView
from core.templates import TemplateRecord, template_view
from service.deps import OwnerDep, Services, ServicesDep, limit_requests, require_key
from service.routes.responses import ERRORS, KEYED_RESPONSES, RETRY_AFTER, accepted
from service.schemas import ErrorBody, TemplateList, template_request_schema
from service.submit import BEING_CREATED, JobBeingCreatedError
from service.template_submit import create_template

logger = logging.getLogger(__name__)

templates_router = APIRouter(
    dependencies=[Depends(require_key), Depends(limit_requests)], responses=KEYED_RESPONSES
)

TEMPLATE_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {
        "model": ErrorBody,
        "description": "No such template (never made, expired, deleted, or another key's).",
    }
}


def _view(request: Request, services: Services, record: TemplateRecord) -> TemplateView | None:
    """The template as the API answers it, with its link; None once Redis has forgotten
    its extraction (a template that was never made)."""
    record, extraction = services.templates.with_extraction(record, services.jobs.extraction)
    view = template_view(record, extraction)
    if view is None:
        return None
    root = request.scope.get("root_path", "")
    path = request.app.url_path_for("template_status", template_id=record.id)
    return view.model_copy(update={"links": TemplateLinks(self=root + path)})


def _owned(services: Services, owner: str, template_id: str) -> TemplateRecord:
    """The owner's template's record: TemplateNotFoundError (404, never 403) otherwise."""
    record = services.templates.get(template_id)
    if record is None or record.owner != owner:
        raise TemplateNotFoundError(template_id)
    return record


def _template(request: Request, services: Services, owner: str, template_id: str) -> TemplateView:
    view = _view(request, services, _owned(services, owner, template_id))
    if view is None:
        raise TemplateNotFoundError(template_id)
    return view


@templates_router.post(
    "/templates",
    status_code=202,
    response_model=TemplateView,
    responses={
        **accepted("template"),
        409: {
            "model": ErrorBody,
            "description": "A request with this Idempotency-Key is still being checked and "
            "queued; retry after `Retry-After` seconds to get its template.",
            "headers": RETRY_AFTER,
        },
        429: {
            "model": ErrorBody,
            "description": "Over the key's requests per minute, the queue is full, or the key "
            "keeps its most bytes of templates (MCNET_TEMPLATE_STORAGE_PER_KEY: delete one); "
            "`Retry-After` says when to try again.",
            "headers": RETRY_AFTER,
        },
        **ERRORS,
    },
    openapi_extra={"requestBody": template_request_schema()},
    summary="Make a motion template from a driving video",
)
async def post_template(
    request: Request,
    response: Response,
    services: ServicesDep,
    owner: OwnerDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Any unique string (a UUID): a retried request with the same key, "
            "video and fields returns the first template (`Idempotent-Replayed: true`)."
        ),
    ] = None,
) -> TemplateView:
    """multipart/form-data with the `driving` video (and `crop`): checked as POST /animate
    checks its driving part, then a worker extracts its motion; follow `links.self` until
    `status` is `finished`, then POST /animate with `template=<id>`."""
    key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
    template_id, replayed = await create_template(request, services, owner, key)
    view = await run_in_threadpool(_view_of, request, services, owner, template_id)
    if view is None:
        raise JobBeingCreatedError(BEING_CREATED.format(what="template"))
    response.headers["Location"] = view.links.self if view.links is not None else ""
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return view


def _view_of(
    request: Request, services: Services, owner: str, template_id: str
) -> TemplateView | None:
    record = services.templates.get(template_id)
    if record is None or record.owner != owner:
        return None
    return _view(request, services, record)


@templates_router.get(
    "/templates/{template_id}",
    name="template_status",
    response_model=TemplateView,
    responses=TEMPLATE_NOT_FOUND,
    summary="Status of a motion template",
)
async def template_status(
    template_id: str, request: Request, services: ServicesDep, owner: OwnerDep
) -> TemplateView:
    """State (queued, started, finished, failed, canceled), the extraction's progress,
    frames, length, size and when it expires."""
    return await run_in_threadpool(_template, request, services, owner, template_id)


def _listed(request: Request, services: Services, owner: str) -> list[TemplateView]:
    views = (_view(request, services, record) for record in services.templates.owned(owner))
    return [view for view in views if view is not None]


@templates_router.get(
    "/templates",
    response_model=TemplateList,
    summary="The caller's motion templates, newest first",
)
async def list_templates(request: Request, services: ServicesDep, owner: OwnerDep) -> TemplateList:
    """Templates made with the caller's API key (every one when the service has no keys),
    newest first, those being made included, until they expire."""
    views = await run_in_threadpool(_listed, request, services, owner)
    return TemplateList(templates=views)


def _delete(services: Services, owner: str, template_id: str) -> None:
    record = _owned(services, owner, template_id)
    if not record.made:  # a queued extraction never runs; a running one stops
        services.jobs.cancel_extraction(template_id)
    try:
        services.storage.delete(template_key(template_id))
        services.storage.delete_inputs(template_id)
    except (StorageError, OSError) as exc:
        raise StorageUnavailableError("delete the template's file") from exc
    services.templates.remove(record)


@templates_router.delete(
    "/templates/{template_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted."}, **TEMPLATE_NOT_FOUND},
    summary="Delete a motion template",
)
async def delete_template(template_id: str, services: ServicesDep, owner: OwnerDep) -> Response:
    """The template is deleted (an extraction still running is canceled, its upload
    removed). Jobs already queued from it are not affected: each has its own copy."""
    await run_in_threadpool(_delete, services, owner, template_id)
    return Response(status_code=204)
