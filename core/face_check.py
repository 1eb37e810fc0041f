"""Is there a face? The API asks before it queues a crop=auto job (torch-free, bounded cost).

The photo is searched on a reduced decode (PHOTO_SEARCH_SIDE); the driving
video on a few frames spread over its length (one seek and one decoded frame each). A photo
or video without a face is refused at once with the worker's own sentence
(core.errors.NoFaceError) instead of failing when a worker reaches it, maybe minutes later.
A video whose sampled frames cannot be decoded is left to the worker to judge.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import av
import av.error
import numpy as np

from core.errors import NoFaceError
from core.media_probe import (
    MediaLimits,
    display_rotation,
    open_reduced_photo,
    open_video_container,
)
from core.memory import release_free_memory

if TYPE_CHECKING:
    from core.face_detector import FaceDetector

logger = logging.getLogger(__name__)

VIDEO_SAMPLES = 6  # driving frames looked at, spread evenly over the clip
# Longest side a photo is searched at: YuNet finds faces down to ~12 px there, and a
# reduced decode (JPEG) or a freed full one (PNG, WebP) keeps a check's memory small.
PHOTO_SEARCH_SIDE = 1280
DETECT_TILE = 480  # YuNet's input: 480 x 480 tiles (about 19 MB of net), see FaceDetector
# One detector for the process, used by one check at a time (OpenCV's YuNet is not
# thread-safe, and each detector holds its nets' memory): memory stays bounded however many
# threads check uploads.
_detector_lock = threading.Lock()
_detectors: list[FaceDetector] = []


def _has_face(image: np.ndarray, max_side: int) -> bool:
    with _detector_lock:
        if not _detectors:
            from core.face_detector import FaceDetector  # OpenCV, loaded on the first check

            _detectors.append(FaceDetector(tile=DETECT_TILE))
        return bool(_detectors[0].detect(image, max_side))


def check_photo_face(path: str | os.PathLike[str], limits: MediaLimits) -> None:
    """NoFaceError("source") if the photo (upright, reduced to PHOTO_SEARCH_SIDE or the
    output's side if smaller) has no face. Freed memory goes back to the system."""
    side = min(PHOTO_SEARCH_SIDE, limits.max_output_side)
    try:
        image = np.asarray(open_reduced_photo(path, limits, side).image.convert("RGB"))
        found = _has_face(image, side)
        del image
    finally:
        release_free_memory()
    if not found:
        raise NoFaceError("source")


def check_video_face(
    path: str | os.PathLike[str], limits: MediaLimits, samples: int = VIDEO_SAMPLES
) -> None:
    """NoFaceError("driving") if none of `samples` frames spread over the video has a face."""
    seen = 0
    for frame in _sampled_frames(path, samples):
        seen += 1
        if _has_face(frame, limits.max_output_side):
            return
    if seen:
        raise NoFaceError("driving")


def _sampled_frames(path: str | os.PathLike[str], samples: int) -> Iterator[np.ndarray]:
    """Up to `samples` upright RGB frames at evenly spread times (nothing if seeking fails)."""
    container = open_video_container(Path(path))
    try:
        stream = container.streams.video[0]
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else (container.duration or 0) / 1e6
        )
        for index in range(samples):
            when = duration * (index + 0.5) / samples
            try:
                if stream.time_base:
                    container.seek(int(when / stream.time_base), stream=stream)
                frame = next(container.decode(stream), None)
            except (av.error.FFmpegError, StopIteration) as exc:
                logger.debug("face check: frame at %.2f s not decoded: %s", when, exc)
                return
            if frame is None:
                return
            rotation = display_rotation(frame, stream)
            yield np.rot90(frame.to_ndarray(format="rgb24"), rotation // 90)
    finally:
        container.close()
