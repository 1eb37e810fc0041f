"""The error answers the routes document in OpenAPI, shared by every resource."""

from __future__ import annotations

from typing import Any

from service.schemas import ErrorBody

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
    429: {
        "model": ErrorBody,
        "description": "Over the key's requests per minute (or, on POST /animate, its jobs "
        "at once); `Retry-After` says when to try again.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    },
    503: {"model": ErrorBody, "description": "The job queue or the file store is unavailable."},
}
