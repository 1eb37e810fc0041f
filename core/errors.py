"""Domain exceptions, shared by model, worker and service.

Each class carries the HTTP status the API answers it with (`status`) and, where the
answer needs them, response headers: the HTTP layer has one exception handler that
reads them. Every message is written for the person who sent the input and says what
they can do.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import ClassVar


class MCNetError(Exception):
    """Base of every error this project raises on purpose."""

    status: ClassVar[int] = 500  # 5xx: a fault of ours; the client gets no details
    headers: Mapping[str, str] = {}


class CheckpointError(MCNetError):
    """A checkpoint file is missing, damaged, unsafe or of another model."""


class BadRequestError(MCNetError):
    """The request itself is malformed (not a complete multipart/form-data body)."""

    status = 400


class UnauthorizedError(MCNetError):
    """The request carries no API key, or one the service does not know."""

    status = 401
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidRequestError(MCNetError):
    """Parts or fields of the request are missing, repeated or unknown."""

    status = 422


class InvalidOptionsError(InvalidRequestError):
    """Job options are out of range or inconsistent."""


class InvalidInputError(MCNetError):
    """An uploaded file cannot be used (not an image/video, corrupted, empty)."""

    status = 415


class UnsupportedMediaError(InvalidInputError):
    """The file is of a kind we do not read."""


class InputTooLargeError(InvalidInputError):
    """The file, its pixel count or its duration is over a configured limit."""

    status = 413


class NoFaceError(InvalidInputError):
    """No face was found in the named input ("source" or "driving")."""

    status = 422

    def __init__(self, which: str, skip: str = "send crop=none") -> None:
        self.which = which
        what = "photo" if which == "source" else "driving video"
        picture = "a picture" if which == "source" else "a video"
        super().__init__(
            f"No face was found in the {what} ({which}). Use {picture} where one face is "
            f"clearly visible, or {skip} if the input is already an aligned 256x256 crop."
        )


class JobNotFoundError(MCNetError):
    """No job with this id (never made, expired, or another key's)."""

    status = 404
    _HINT = "job ids are UUIDs such as 123e4567-e89b-42d3-a456-426614174000"

    def __init__(self, job_id: str) -> None:
        shown = job_id if len(job_id) <= 64 else job_id[:64] + "..."
        super().__init__(f"No job with id {shown!r} ({self._HINT}); it may have expired.")


class TemplateNotFoundError(MCNetError):
    """No motion template with this id (never made, expired, deleted, or another key's)."""

    status = 404

    def __init__(self, template_id: str) -> None:
        shown = template_id if len(template_id) <= 64 else template_id[:64] + "..."
        super().__init__(
            f"No motion template with id {shown!r}; it may have expired or been deleted "
            "(GET /templates lists yours)."
        )


class ResultGoneError(MCNetError):
    """The job finished, but its MP4 has expired or was removed."""

    status = 404


class UploadTooSlowError(MCNetError):
    """The upload stalled, or arrived slower than the service accepts."""

    status = 408


class JobStateError(MCNetError):
    """The job is not in a state that allows this (not finished yet, or already ended)."""

    status = 409


class RangeNotSatisfiableError(MCNetError):
    """The requested byte range starts past the end of the file."""

    status = 416

    def __init__(self, header: str | None, size: int) -> None:
        super().__init__(f"The range {header!r} is past the end of the file ({size} bytes).")
        self.headers = {"Content-Range": f"bytes */{size}"}


class JobCanceledError(MCNetError):
    """The job was canceled by its owner while it ran."""


class ServiceUnavailableError(MCNetError):
    """A backend the service needs is unavailable for now; the client may try again."""

    status = 503
    headers = {"Retry-After": "5"}


class BusyError(ServiceUnavailableError):
    """The service is at its limit of concurrent uploads; the client may try again."""


class StorageUnavailableError(ServiceUnavailableError):
    """The file store cannot be written: unreachable, read-only or full."""

    def __init__(self, action: str = "store the files") -> None:
        super().__init__(
            f"The service could not {action}: storage unavailable or full. Please try again "
            "later; if it persists, tell the service's operator."
        )


class LimitReason(enum.StrEnum):
    """Which limit refused a request (the `reason` label of `mcnet_rate_limited_total`)."""

    REQUESTS = "requests"  # the key's requests per minute
    CONCURRENT_JOBS = "concurrent_jobs"  # the key's jobs queued or running at once
    QUEUE_FULL = "queue_full"  # the service's queued jobs
    FRAME_BUDGET = "frame_budget"  # the key's driving frames per hour
    TEMPLATE_STORAGE = "template_storage"  # the key's bytes of motion templates


class RateLimitedError(MCNetError):
    """A limit refuses the request (core.ratelimit): the key's requests per minute, its
    jobs at once, its frames per hour or its templates' bytes, or the queue is full; try
    again later."""

    status = 429

    def __init__(self, message: str, retry_after: int, key: str, reason: LimitReason) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.key = key  # the key's name (never the key itself)
        self.reason = reason
        self.headers = {"Retry-After": str(retry_after)}
