"""Motion templates as a key's resource (POST /templates): their records in Redis, who
owns them, the bytes they keep, and the `TemplateView` the API answers. Torch-free.

A template is made like a job: the API stores the driving video as the `driving` input
of the template's id and queues its extraction (core.jobs.submit_template); a worker
extracts the motion, stores it under `core.storage.template_key` and marks the record
made (`mark_made`), which starts its TTL (MCNET_TEMPLATE_TTL). Until then its state is its
extraction job's.

Redis keys (per queue):

    mcnet:template:<queue>:<id>           hash: owner, created_at, crop, the video's probe;
                                          once made: bytes, frames, fps, has_audio,
                                          made_at, expires_at
    mcnet:templates:<queue>:<owner>       sorted set: the owner's template ids by creation
    mcnet:template-bytes:<queue>          hash: id -> bytes of each made template
    mcnet:template-expiry:<queue>         sorted set: id -> when each made template expires
    mcnet:<queue>:templates-made          hash: extractions ended, by outcome
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import WatchError

from core.job_view import JobView
from core.media_probe import VideoInfo
from core.protocol import JobState, Progress, Stage
from core.storage import check_job_id
from core.template_view import TemplateView

TEMPLATE_PREFIX = "mcnet:template:"
OWNED_PREFIX = "mcnet:templates:"


@dataclass(frozen=True)
class TemplateRecord:
    """What Redis keeps of one template."""

    id: str
    owner: str
    created_at: float
    crop: str
    video: VideoInfo  # the API's probe of the uploaded video; once made, the template's facts
    size: int | None = None  # bytes, set once made
    made_at: float | None = None
    expires_at: float | None = None

    @property
    def made(self) -> bool:
        """Whether the template is stored and ready to animate with."""
        return self.made_at is not None

    @classmethod
    def from_hash(cls, template_id: str, raw: dict[bytes, bytes]) -> TemplateRecord:
        """The record of a Redis hash (HGETALL)."""
        fields = {key.decode(): value.decode() for key, value in raw.items()}

        def number(name: str) -> float | None:
            return float(fields[name]) if name in fields else None

        size = number("bytes")
        return cls(
            id=template_id,
            owner=fields.get("owner", ""),
            created_at=number("created_at") or 0.0,
            crop=fields.get("crop", "auto"),
            video=VideoInfo(**json.loads(fields["video"])),
            size=None if size is None else int(size),
            made_at=number("made_at"),
            expires_at=number("expires_at"),
        )


def _time(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, dt.UTC)


def template_view(record: TemplateRecord, extraction: JobView | None) -> TemplateView | None:
    """The template as the API shows it: made (finished), else its extraction's state;
    None when neither is known any more (an extraction Redis has forgotten)."""
    video = record.video
    common: dict[str, Any] = {
        "id": record.id,
        "frames": video.frames,
        "fps": video.fps,
        "duration_seconds": video.duration,
        "created_at": _time(record.created_at),
    }
    if record.made:
        return TemplateView(
            **common,
            status=JobState.FINISHED,
            progress=Progress(Stage.DONE, video.frames, video.frames),
            has_audio=video.has_audio,
            bytes=record.size,
            ended_at=_time(record.made_at),
            expires_at=_time(record.expires_at),
        )
    if extraction is None:
        return None
    status = extraction.status
    if status is JobState.FINISHED:  # recorded finished, the record not made: being removed
        status = JobState.CANCELED
    return TemplateView(
        **common,
        status=status,
        progress=extraction.progress,
        ended_at=extraction.ended_at,
        error=extraction.error if status.ended else None,
    )


class TemplateStore:
    """The templates of one queue on one Redis. `ttl`: seconds a made template is kept;
    `retention`: seconds the record of one being made is kept (as long as its job can be)."""

    def __init__(self, connection: Redis, queue_name: str, ttl: int, retention: int = 0) -> None:
        self.connection = connection
        self.queue_name = queue_name
        self.ttl = ttl
        self.retention = max(retention, 3600)

    def _key(self, template_id: str) -> str:
        return f"{TEMPLATE_PREFIX}{self.queue_name}:{check_job_id(template_id)}"

    def _owned_key(self, owner: str) -> str:
        return f"{OWNED_PREFIX}{self.queue_name}:{owner}"

    @property
    def _bytes_key(self) -> str:
        return f"mcnet:template-bytes:{self.queue_name}"

    @property
    def _expiry_key(self) -> str:
        return f"mcnet:template-expiry:{self.queue_name}"

    @property
    def _made_key(self) -> str:
        return f"mcnet:{self.queue_name}:templates-made"

    # the API ----------------------------------------------------------------------------
    def create(
        self, template_id: str, owner: str, crop: str, video: VideoInfo, now: float | None = None
    ) -> None:
        """Record a template being made by `owner` from a video probed as `video`."""
        now = time.time() if now is None else now
        owned = self._owned_key(owner)
        with self.connection.pipeline() as pipe:
            pipe.hset(
                self._key(template_id),
                mapping={
                    "owner": owner,
                    "created_at": repr(now),
                    "crop": crop,
                    "video": json.dumps(dataclasses.asdict(video)),
                },
            )
            pipe.expire(self._key(template_id), self.retention)
            pipe.zadd(owned, {template_id: now})
            pipe.expire(owned, max(self.retention, self.ttl) + self.retention)
            pipe.execute()

    def get(self, template_id: str) -> TemplateRecord | None:
        """The template's record; None when unknown (expired, deleted, or a malformed id)."""
        try:
            key = self._key(template_id)
        except ValueError:
            return None
        raw: dict[bytes, bytes] = self.connection.hgetall(key)  # type: ignore[assignment]
        return TemplateRecord.from_hash(template_id, raw) if raw else None

    def with_extraction(
        self, record: TemplateRecord, extraction: Callable[[str], JobView | None]
    ) -> tuple[TemplateRecord, JobView | None]:
        """The record and, until it is made, its extraction's state (`extraction`: read by
        id, core.jobs.JobQueue.extraction). Read after the record, an extraction that
        finished meanwhile means the record was made meanwhile: it is read again."""
        if record.made:
            return record, None
        job = extraction(record.id)
        if job is not None and job.status is JobState.FINISHED:
            again = self.get(record.id)
            if again is not None and again.made:
                return again, None
        return record, job

    def owned(self, owner: str) -> list[TemplateRecord]:
        """The owner's templates Redis still keeps, newest first (forgetting the others)."""
        members: list[bytes] = self.connection.zrevrange(self._owned_key(owner), 0, -1)  # type: ignore[assignment]
        ids = [member.decode() for member in members]
        with self.connection.pipeline() as pipe:
            for template_id in ids:
                pipe.hgetall(self._key(template_id))
            raws: list[dict[bytes, bytes]] = pipe.execute() if ids else []
        records = [
            TemplateRecord.from_hash(template_id, raw)
            for template_id, raw in zip(ids, raws, strict=True)
            if raw
        ]
        gone = [template_id for template_id, raw in zip(ids, raws, strict=True) if not raw]
        if gone:
            self.connection.zrem(self._owned_key(owner), *gone)
        return records

    def usage(self, owner: str) -> tuple[int, float | None]:
        """Bytes of the owner's made templates, and when the first of them expires."""
        made = [record for record in self.owned(owner) if record.made]
        expiries = [record.expires_at for record in made if record.expires_at is not None]
        return sum(record.size or 0 for record in made), min(expiries, default=None)

    def remove(self, record: TemplateRecord) -> None:
        """Forget the template (its stored file is the caller's to delete)."""
        with self.connection.pipeline() as pipe:
            pipe.delete(self._key(record.id))
            pipe.zrem(self._owned_key(record.owner), record.id)
            pipe.hdel(self._bytes_key, record.id)
            pipe.zrem(self._expiry_key, record.id)
            pipe.execute()

    def stored_bytes(self, now: float | None = None) -> int:
        """Bytes of all made templates not yet expired (the expired are forgotten here)."""
        now = time.time() if now is None else now
        expired: list[bytes] = self.connection.zrangebyscore(self._expiry_key, "-inf", now)  # type: ignore[assignment]
        if expired:
            with self.connection.pipeline() as pipe:
                pipe.hdel(self._bytes_key, *expired)
                pipe.zrem(self._expiry_key, *expired)
                pipe.execute()
        values: list[bytes] = self.connection.hvals(self._bytes_key)  # type: ignore[assignment]
        return sum(int(value) for value in values)

    def made_counts(self) -> dict[str, int]:
        """Extractions ended, by outcome (finished, failed, canceled), since Redis began."""
        raw: dict[bytes, bytes] = self.connection.hgetall(self._made_key)  # type: ignore[assignment]
        counts = {"finished": 0, "failed": 0, "canceled": 0}
        for key, value in raw.items():
            counts[key.decode()] = int(value)
        return counts

    # the worker -------------------------------------------------------------------------
    def mark_made(
        self,
        template_id: str,
        *,
        size: int,
        frames: int,
        fps: float,
        has_audio: bool,
        now: float | None = None,
    ) -> bool:
        """Record the template stored (`size` bytes) and start its TTL; False when it was
        deleted meanwhile (nothing written: the caller removes the file)."""
        now = time.time() if now is None else now
        key = self._key(template_id)
        expires = now + self.ttl
        for _ in range(5):
            with self.connection.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw: dict[bytes, bytes] = pipe.hgetall(key)  # type: ignore[assignment]
                    if not raw:
                        return False
                    record = TemplateRecord.from_hash(template_id, raw)
                    video = dataclasses.replace(
                        record.video,
                        frames=frames,
                        fps=fps,
                        duration=frames / fps if fps else 0.0,
                        has_audio=has_audio,
                    )
                    pipe.multi()
                    pipe.hset(
                        key,
                        mapping={
                            "video": json.dumps(dataclasses.asdict(video)),
                            "bytes": size,
                            "made_at": repr(now),
                            "expires_at": repr(expires),
                        },
                    )
                    pipe.expire(key, self.ttl)
                    pipe.hset(self._bytes_key, template_id, size)
                    pipe.zadd(self._expiry_key, {template_id: expires})
                    pipe.execute()
                    return True
                except WatchError:
                    continue
        return False

    def count_ended(self, outcome: str) -> None:
        """Count an extraction that ended (finished, failed, canceled)."""
        self.connection.hincrby(self._made_key, outcome, 1)
