"""Idempotent submits: an `Idempotency-Key` maps to the first job made with it. Torch-free.

Per owner and queue, `mcnet:idem:<queue>:<owner>:<sha256 of the key>` holds the job id
and a fingerprint of the request (SHA-256 over the uploads and the options), kept as
long as the job can be. A retry with the same key and the same request gets the first
job; the same key with other files or options is refused (422).
"""

from __future__ import annotations

import hashlib
import json

from redis import Redis

from core.errors import InvalidRequestError

IDEMPOTENCY_PREFIX = "mcnet:idem:"
MAX_KEY_LENGTH = 255


class IdempotencyConflictError(InvalidRequestError):
    """The Idempotency-Key was used before for another request."""


def check_idempotency_key(value: str) -> str:
    """The header's value if usable (1 to 255 printable ASCII characters), else a 422."""
    if not 0 < len(value) <= MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise InvalidRequestError(
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable ASCII "
            "characters, such as a UUID."
        )
    return value


def fingerprint(file_digests: dict[str, str], options: dict[str, object]) -> str:
    """SHA-256 over the uploads' digests (by part) and the options (as JSON)."""
    text = json.dumps({"files": file_digests, "options": options}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotencyStore:
    """Idempotency keys on one Redis, for one queue."""

    def __init__(self, connection: Redis, queue_name: str, retention: int) -> None:
        self.connection = connection
        self.queue_name = queue_name
        self.retention = retention

    def _key(self, owner: str, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{IDEMPOTENCY_PREFIX}{self.queue_name}:{owner}:{digest}"

    def claim(self, owner: str, key: str, request_fingerprint: str, job_id: str) -> str | None:
        """Record `job_id` for the key; None when it is the first use. On a retry, the job
        id of the first use; IdempotencyConflictError when that request was another one."""
        redis_key = self._key(owner, key)
        value = json.dumps({"job": job_id, "fingerprint": request_fingerprint})
        for _ in range(3):  # the first use may expire or be released between SET and GET
            if self.connection.set(redis_key, value, nx=True, ex=self.retention):
                return None
            raw = self.connection.get(redis_key)
            if raw is None:
                continue
            first = json.loads(raw)
            if first.get("fingerprint") != request_fingerprint:
                raise IdempotencyConflictError(
                    "This Idempotency-Key was already used for a request with other files or "
                    "options; use a new key for a new job."
                )
            return str(first["job"])
        raise IdempotencyConflictError("The Idempotency-Key is in use; retry the request.")

    def known(self, owner: str, key: str) -> bool:
        """Whether the key was used before (a retry, whose job is already counted)."""
        return bool(self.connection.exists(self._key(owner, key)))

    def release(self, owner: str, key: str, job_id: str) -> None:
        """Forget the key when the job it names could not be queued after all."""
        redis_key = self._key(owner, key)
        raw = self.connection.get(redis_key)
        if raw is not None and json.loads(raw).get("job") == job_id:
            self.connection.delete(redis_key)
