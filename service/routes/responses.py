"""The error answers the routes document in OpenAPI, shared by every resource."""

from __future__ import annotations

from typing import Any

from service.schemas import ErrorBody

RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}
}

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Malformed multipart body.",
        413: "A file, its pixel count, frame count or duration is over a limit.",
        415: "Not a usable image or video (wrong kind, empty, damaged, truncated).",
        422: "Missing parts, unknown fields, invalid options, or (crop=auto) no face in the "
        "photo or in the driving video.",
    }.items()
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such job."}
}

# Every route of a key's jobs: the key check and the request limit answer these, and a
# job queue or file store out of reach a 503.
KEYED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or unknown API key (when keys are on)."},
    422: {"model": ErrorBody, "description": "A parameter or header is not valid."},
    429: {
        "model": ErrorBody,
        "description": "Over the key's requests per minute (or, on POST /animate, its jobs "
        "at once); `Retry-After` says when to try again.",
        "headers": RETRY_AFTER,
    },
    503: {"model": ErrorBody, "description": "The job queue or the file store is unavailable."},
}


def accepted(thing: str) -> dict[int | str, dict[str, Any]]:
    """The 202 of an upload that makes a `thing` (job, template): its `Location`, and
    `Idempotent-Replayed` for a retried Idempotency-Key."""
    return {
        202: {
            "description": f"Queued (or, for a retried Idempotency-Key, the first {thing}).",
            "headers": {
                "Location": {"schema": {"type": "string"}, "description": f"The {thing}'s URL."},
                "Idempotent-Replayed": {
                    "schema": {"type": "string", "enum": ["true"]},
                    "description": f"Present when this is the {thing} of an earlier request "
                    "with the same Idempotency-Key.",
                },
            },
        }
    }
