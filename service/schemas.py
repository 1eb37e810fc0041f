"""Request and response schemas of the HTTP API, as OpenAPI shows them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from core.job_view import JobView, Links
from core.options import JobOptions
from core.protocol import Stage
from core.template_view import TemplateView


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: one sentence the client can act on."""

    detail: str = Field(description="What was wrong and what to do about it.")


class SubmitResponse(BaseModel):
    """Answer to POST /animate: the job was queued."""

    id: str = Field(description="Job id (a random UUID).")
    status: str = Field(
        description="`queued` for a new job; for an idempotent replay (`Idempotent-Replayed: "
        "true`), the first job's current status (queued, started, finished, failed, canceled)."
    )
    links: Links
    estimated_seconds: float | None = Field(
        None,
        description="Seconds until the job should end, from the live workers' measured speed "
        "and the jobs ahead; null until a worker has measured its speed.",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Worth knowing before waiting: a job estimated to take longer than the "
        "service's threshold (MCNET_LONG_JOB_WARNING) says so here.",
    )


class StageBody(BaseModel):
    """One stage of a job; `GET /stages` lists them in the order they come."""

    stage: Stage
    label: str = Field(description="What the stage does, for people.")


class JobList(BaseModel):
    """Answer to GET /jobs: a page of the caller's jobs, newest first."""

    jobs: list[JobView]
    next_cursor: str | None = Field(
        None,
        description="Pass as `cursor` for the next (older) page; null on the last page. A "
        "page filtered by status is filled from older jobs (it holds fewer than `limit` only at "
        "the end, or after 1000 jobs read): go on while this is set.",
    )


class TemplateList(BaseModel):
    """Answer to GET /templates: the caller's motion templates, newest first."""

    templates: list[TemplateView]


def event_schema() -> dict[str, Any]:
    """The schema of an event's data (JobView), its references pointing at the document's
    components (Progress, Links, Stage), never at a `$defs` the document lacks."""
    schema = JobView.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


def _form_field(schema: dict[str, Any]) -> dict[str, Any]:
    """An option's schema as a form field: a form cannot send null (an absent field takes
    the default), so `anyOf [X, null]` is X, and a null default is no default."""
    entry = {key: value for key, value in schema.items() if key != "title"}
    variants = [v for v in entry.pop("anyOf", []) if v.get("type") != "null"]
    if len(variants) == 1:
        entry.update(variants[0])
    elif variants:
        entry["anyOf"] = variants
    if "default" in entry and entry["default"] is None:
        del entry["default"]
    return entry


def animate_request_schema() -> dict[str, Any]:
    """OpenAPI request body of POST /animate: the two files and every option of JobOptions."""
    options = JobOptions.model_json_schema()
    properties: dict[str, Any] = {
        "source": {
            "type": "string",
            "format": "binary",
            "description": "The photo with a face: JPEG, PNG or WebP.",
        },
        "driving": {
            "type": "string",
            "format": "binary",
            "description": "The driving video of a talking head: MP4, MOV, WebM, MKV, AVI or "
            "GIF. Its sound is copied into the result. Absent when `template` is sent.",
        },
        "template": {
            "type": "string",
            "format": "uuid",
            "description": "Instead of `driving`: the id of one of your motion templates "
            "(POST /templates), finished. Not with layout=side_by_side.",
        },
    }
    for name, schema in options["properties"].items():
        properties[name] = _form_field(schema)
    properties["webhook"] = {
        "type": "string",
        "format": "uri",
        "maxLength": 256,
        "description": "An http(s) URL the worker posts the job's JSON to, signed (headers "
        "webhook-id, webhook-timestamp, webhook-signature: `v1,` + base64 HMAC-SHA256 of "
        "`id.timestamp.body` with the service's secret; see the README). Public addresses "
        "only unless the operator allows more.",
    }
    properties["webhook_events"] = {
        "type": "string",
        "default": "completed",
        "description": "Comma-separated: started, progress (at most every few seconds), "
        "completed (finished, failed or canceled).",
    }
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["source"],
                    "properties": properties,
                    "additionalProperties": False,
                },
                "encoding": {
                    "source": {"contentType": "image/*"},
                    "driving": {"contentType": "video/*"},
                },
            }
        },
    }


def template_request_schema() -> dict[str, Any]:
    """OpenAPI request body of POST /templates: the driving video and its framing."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["driving"],
                    "properties": {
                        "driving": {
                            "type": "string",
                            "format": "binary",
                            "description": "The driving video of a talking head: MP4, MOV, "
                            "WebM, MKV, AVI or GIF. Deleted once its template is made.",
                        },
                        "crop": {
                            "type": "string",
                            "enum": ["auto", "none"],
                            "default": "auto",
                            "description": "auto: find the face and crop it as the model was "
                            "trained (a face must show in sampled frames); none: the video is "
                            "already an aligned 256x256 face crop.",
                        },
                    },
                    "additionalProperties": False,
                },
                "encoding": {"driving": {"contentType": "video/*"}},
            }
        },
    }
