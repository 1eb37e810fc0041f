"""The keys' motion templates in Redis: records, ownership, the made state and its TTL, the
bytes kept per key and in all, the view the API answers, and the key's storage limit."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from redis import Redis

from core.errors import LimitReason, RateLimitedError
from core.job_view import JobView
from core.jobs import JobQueue
from core.media_probe import VideoInfo
from core.ownership import JobOwners
from core.protocol import JobState, Progress, Stage
from core.ratelimit import KeyLimits
from core.settings import QueueSettings
from core.templates import TemplateStore, template_view
from service.local import EmbeddedRedis

VIDEO = VideoInfo(width=192, height=144, frames=50, fps=25.0, duration=2.0, has_audio=False)
TTL = 3600


@pytest.fixture
def redis(redis_server: EmbeddedRedis) -> Redis:
    return Redis.from_url(redis_server.url)


@pytest.fixture
def store(redis: Redis) -> TemplateStore:
    return TemplateStore(redis, f"q-{uuid.uuid4().hex[:8]}", TTL, retention=600)


def _new(store: TemplateStore, owner: str = "a", now: float | None = None) -> str:
    template_id = str(uuid.uuid4())
    store.create(template_id, owner, "auto", VIDEO, now=now)
    return template_id


def _extraction(template_id: str, status: JobState, error: str | None = None) -> JobView:
    return JobView(
        id=template_id,
        status=status,
        progress=Progress(Stage.CROPPING, 10, 50),
        error=error,
        ended_at=dt.datetime.now(dt.UTC) if status.ended else None,
    )


def test_a_template_is_its_extractions_state_until_made(store: TemplateStore) -> None:
    template_id = _new(store, now=1000.0)
    record = store.get(template_id)
    assert record is not None and not record.made and record.owner == "a"
    assert record.video == VIDEO and record.crop == "auto"
    started = template_view(record, _extraction(template_id, JobState.STARTED))
    assert started is not None and started.status is JobState.STARTED
    assert started.progress == Progress(Stage.CROPPING, 10, 50)
    assert (started.frames, started.fps, started.duration_seconds) == (50, 25.0, 2.0)
    assert started.bytes is None and started.has_audio is None and started.expires_at is None
    failed = template_view(record, _extraction(template_id, JobState.FAILED, "No face."))
    assert failed is not None and failed.status is JobState.FAILED and failed.error == "No face."
    assert template_view(record, None) is None, "an extraction Redis forgot: no template"

    assert store.mark_made(template_id, size=1234, frames=49, fps=25.0, has_audio=True, now=2000.0)
    made = store.get(template_id)
    assert made is not None and made.made and made.size == 1234
    assert made.expires_at == 2000.0 + TTL
    view = template_view(made, None)
    assert view is not None and view.ready and view.bytes == 1234 and view.has_audio
    assert view.frames == 49 and view.progress == Progress(Stage.DONE, 49, 49)
    assert view.expires_at == dt.datetime.fromtimestamp(2000.0 + TTL, dt.UTC)
    assert 0 < store.connection.ttl(store._key(template_id)) <= TTL


def test_an_extraction_that_ended_meanwhile_is_read_again(store: TemplateStore) -> None:
    template_id = _new(store)
    stale = store.get(template_id)
    assert stale is not None

    def finished_after_making(wanted: str) -> JobView:
        store.mark_made(wanted, size=10, frames=50, fps=25.0, has_audio=False)
        return _extraction(wanted, JobState.FINISHED)

    record, extraction = store.with_extraction(stale, finished_after_making)
    assert record.made and extraction is None


def test_owned_usage_removal_and_bytes(store: TemplateStore) -> None:
    now = time.time()
    first, second = _new(store, now=now - 20), _new(store, now=now - 10)
    theirs = _new(store, owner="b", now=now)
    assert [r.id for r in store.owned("a")] == [second, first]
    assert [r.id for r in store.owned("b")] == [theirs]
    assert store.usage("a") == (0, None), "templates being made count nothing"
    store.mark_made(first, size=100, frames=50, fps=25.0, has_audio=False, now=now - 5)
    store.mark_made(second, size=50, frames=50, fps=25.0, has_audio=False, now=now)
    store.mark_made(theirs, size=7, frames=50, fps=25.0, has_audio=False, now=now)
    assert store.usage("a") == (150, now - 5 + TTL)
    assert store.stored_bytes(now) == 157
    assert store.stored_bytes(now + TTL - 1) == 57, "the first one expired"
    record = store.get(second)
    assert record is not None
    store.remove(record)
    assert store.get(second) is None and [r.id for r in store.owned("a")] == [first]
    assert store.stored_bytes(now + TTL - 1) == 7
    assert not store.mark_made(second, size=1, frames=1, fps=1.0, has_audio=False), "deleted"
    assert store.get(second) is None, "marking a deleted template made writes nothing"
    assert store.get("not-a-uuid") is None


def test_made_counts_by_outcome(store: TemplateStore) -> None:
    assert store.made_counts() == {"finished": 0, "failed": 0, "canceled": 0}
    store.count_ended("finished")
    store.count_ended("finished")
    store.count_ended("failed")
    assert store.made_counts() == {"finished": 2, "failed": 1, "canceled": 0}


def test_a_key_at_its_template_storage_is_refused_until_the_oldest_expires(
    redis: Redis, store: TemplateStore
) -> None:
    settings = QueueSettings(queue_name=store.queue_name)
    jobs = JobQueue(redis, settings)
    limits = KeyLimits(
        redis, jobs, JobOwners(redis, store.queue_name, 600), None, None,
        templates=store, template_bytes=100,
    )  # fmt: skip
    now = time.time()
    template_id = _new(store, now=now)
    limits.check_template_storage("a", now)
    store.mark_made(template_id, size=100, frames=50, fps=25.0, has_audio=False, now=now)
    with pytest.raises(RateLimitedError) as refused:
        limits.check_template_storage("a", now + 60)
    assert refused.value.reason is LimitReason.TEMPLATE_STORAGE
    assert refused.value.retry_after == TTL - 60
    assert "DELETE /templates/{id}" in str(refused.value)
    limits.check_template_storage("b", now)  # another key's templates are its own
    KeyLimits(redis, jobs, limits.owners, None, None, templates=store).check_template_storage("a")
