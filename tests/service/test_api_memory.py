"""The API's memory under 16 concurrent 6000 x 6000 photos with crop=auto (the face check):
a real `mcnet api` process, its peak and settled resident memory read from /proc."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from service.local import EmbeddedRedis
from tests.service.large_photos import (
    ApiProcess,
    burst,
    large_photos,
    resident_mib,
    talking_video,
)

CONCURRENT = 16
PEAK_MIB = 300  # the API's peak resident memory through every burst
SETTLED_MIB = 200  # and a few seconds after them


def test_concurrent_large_photos_keep_the_api_under_its_memory_bound(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    photos = large_photos(tmp_path)
    video = talking_video(tmp_path)
    api = ApiProcess(
        {
            "REDIS_URL": redis_server.url,
            "STORAGE_URL": (tmp_path / "store").as_uri(),
            "MCNET_QUEUE_NAME": f"memory-{uuid.uuid4().hex[:8]}",
        },
        tmp_path / "api.log",
    )
    try:
        api.wait_ready()
        peaks = {}
        for fmt, photo in photos.items():
            codes = burst(api.url, photo, video, CONCURRENT)
            assert codes == [202] * CONCURRENT, (fmt, codes, api.log_path.read_text()[-2000:])
            peaks[fmt] = resident_mib(api.process.pid)["VmHWM"]
        time.sleep(2)
        settled = resident_mib(api.process.pid)["VmRSS"]
    finally:
        api.stop()
    assert max(peaks.values()) < PEAK_MIB, peaks
    assert settled < SETTLED_MIB, (settled, peaks)
