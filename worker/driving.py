"""The driving video's passes: a scan (count, rate, crop box), then streams of 256 crops.

Each pass decodes the file again instead of keeping frames, so memory stays flat over the
video's length: a pass holds one frame (plus what the model batches).
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from core.errors import InvalidInputError
from core.face_detector import Box, FaceDetector
from core.media_probe import well_short
from worker.framing import ClipFaceTrack, CropBox, resize_square
from worker.media.decode import RateMeter, decode_frames
from worker.media.settings import MediaSettings

logger = logging.getLogger(__name__)

Tick = Callable[[int], None]  # called with frames done; may raise JobCanceledError

DETECT_AHEAD = 4  # at most this many sampled frames wait for face detection while decoding goes on


@dataclass(frozen=True)
class DrivingScan:
    """What one pass over the driving video found."""

    frames: int  # decoded frames (the output has as many)
    fps: Fraction  # average rate: variable-rate input is output at its average
    start: float  # presentation time (s) of the first frame, to align the sound with
    width: int  # size of the (upright, capped) frames the later passes produce
    height: int
    crop: CropBox | None  # the clip's one crop box (None with crop=none)
    warnings: tuple[str, ...] = ()  # what the job's result should tell the user (framing)


def scan_driving(
    path: str | os.PathLike[str],
    settings: MediaSettings,
    *,
    detector: FaceDetector | None,
    estimate: int,
    tick: Tick,
) -> DrivingScan:
    """Decode the whole clip once: exact frame count and rate, and (with a detector) the
    crop box from faces found in `settings.detect_samples` frames spread over the clip
    (`estimate` is the expected frame count, to spread them)."""
    meter = RateMeter()
    track = ClipFaceTrack(detector) if detector is not None else None
    stride = max(1, math.ceil(estimate / max(1, settings.detect_samples)))
    width = height = 0
    # Detection runs on its own thread (OpenCV releases the GIL), overlapping the decoding.
    detecting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcnet-detect")
    pending: deque[Future[Box | None]] = deque()
    try:
        for frame in decode_frames(path, settings.limits, max_side=settings.driving_max_side):
            meter.add(frame)
            if frame.index == 0 or (track is not None and frame.index % stride == 0):
                rgb = frame.rgb()
                height, width = rgb.shape[:2]
                if track is not None:
                    pending.append(detecting.submit(track.add, rgb))
                    while len(pending) > DETECT_AHEAD:
                        pending.popleft().result()
            tick(frame.index + 1)
        for future in pending:
            future.result()
    finally:
        detecting.shutdown(wait=True, cancel_futures=True)
    if meter.frames == 0:
        raise InvalidInputError("The driving video contains no frames.")
    framing = track.framing() if track is not None else None
    crop = framing.box if framing is not None else None
    fps = meter.rate()
    logger.info(
        "driving: %d frames, %.3f fps, %dx%d, crop %s", meter.frames, fps, width, height, crop
    )
    warnings = framing.warnings if framing is not None else ()
    return DrivingScan(meter.frames, fps, meter.first or 0.0, width, height, crop, warnings)


def ended_early(scan: DrivingScan, probed: int) -> tuple[str, ...]:
    """The job's warning when decoding gave well fewer frames than the probe counted (frames
    whose data is there but does not decode): the result is only as long as the decoded
    part."""
    if not well_short(scan.frames, probed):
        return ()
    return (
        f"The driving video ended early: {scan.frames} of its {probed} frames could be "
        "decoded (the file may be damaged or truncated), so the result is that much shorter.",
    )


def driving_frames(
    path: str | os.PathLike[str], scan: DrivingScan, settings: MediaSettings, tick: Tick
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (upright frame, its 256x256 model input) for each frame of the clip.

    The model input is the clip's crop box cut out, or with crop=none the whole frame
    resized to 256x256 as the official demo does. `tick` runs before each frame.
    """
    for _, rgb, crop in _cropped_frames(path, scan, settings, tick):
        yield rgb, crop


def timed_model_inputs(
    path: str | os.PathLike[str], scan: DrivingScan, settings: MediaSettings, tick: Tick
) -> Iterator[tuple[float | None, np.ndarray]]:
    """Yield (presentation time in seconds or None, 256x256 model input) for each frame."""
    for time, _, crop in _cropped_frames(path, scan, settings, tick):
        yield time, crop


def _cropped_frames(
    path: str | os.PathLike[str], scan: DrivingScan, settings: MediaSettings, tick: Tick
) -> Iterator[tuple[float | None, np.ndarray, np.ndarray]]:
    for frame in decode_frames(path, settings.limits, max_side=settings.driving_max_side):
        tick(frame.index)
        rgb = frame.rgb()
        crop = scan.crop.cut(rgb) if scan.crop is not None else resize_square(rgb)
        yield frame.time, rgb, crop


def model_inputs(
    path: str | os.PathLike[str], scan: DrivingScan, settings: MediaSettings, tick: Tick
) -> Generator[np.ndarray, None, None]:
    """Yield only the 256x256 model inputs of the clip (see `driving_frames`)."""
    for _, crop in driving_frames(path, scan, settings, tick):
        yield crop
