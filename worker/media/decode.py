"""Streamed video decoding with PyAV: one RGB frame at a time, upright, optionally downscaled.

Reads what phones and editors write (MP4/H.264, MOV, WebM/VP9, MKV, AVI, animated GIF,
8- or 10-bit). Rotation metadata (the display matrix, or the legacy `rotate` tag) is
applied to the pixels. Frames are produced in decoding order with their timestamps; the
caller keeps none of them unless it wants to, so memory does not grow with the video.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av.error
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from core.errors import InvalidInputError
from core.media_probe import (
    MediaLimits,
    average_rate,
    check_duration,
    check_frame_count,
    check_video_size,
    declared_rate,
    display_rotation,
    fit_within,
    open_video_container,
)

logger = logging.getLogger(__name__)

# counter-clockwise display rotation -> the OpenCV turn that applies it
_CV2_ROTATE = {
    90: cv2.ROTATE_90_COUNTERCLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_CLOCKWISE,
}


@dataclass
class DecodedFrame:
    """One decoded frame; `rgb()` converts it (upright, scaled) to an HxWx3 uint8 array."""

    index: int
    time: float | None  # presentation time in seconds, None when the file has none
    duration: float | None  # seconds this frame is shown, when the file says
    stream_rate: Fraction | None  # the rate the headers declare
    _frame: Any
    _rotation: int  # counter-clockwise degrees
    _coded_size: tuple[int, int]  # (width, height) to scale to before rotating
    # One per pass: it keeps its scaler between frames (a new one per frame costs more than
    # the conversion itself at 1080p).
    _reformatter: VideoReformatter

    def rgb(self) -> np.ndarray:
        """The frame as an upright HxWx3 uint8 RGB array."""
        width, height = self._coded_size
        frame = self._frame
        array: np.ndarray = self._reformatter.reformat(
            frame,
            width=width,
            height=height,
            format="rgb24",
            interpolation="AREA" if width < frame.width else "BILINEAR",
            src_color_range=frame.color_range or None,
        ).to_ndarray()
        if self._rotation:
            array = cv2.rotate(array, _CV2_ROTATE[self._rotation])
        return array


def decode_frames(
    path: str | os.PathLike[str],
    limits: MediaLimits | None = None,
    *,
    max_side: int | None = None,
) -> Iterator[DecodedFrame]:
    """Yield the frames of the video at `path`, one at a time.

    `max_side` caps the longer side of the frames `rgb()` returns (downscale only).
    Raises UnsupportedMediaError / InvalidInputError / InputTooLargeError; a file that
    breaks off after some frames (truncated) ends early with a logged warning.
    """
    limits = limits or MediaLimits()
    container = open_video_container(Path(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        check_video_size(stream.codec_context.width, stream.codec_context.height, limits)
        time_base = float(stream.time_base) if stream.time_base else None
        rate = declared_rate(stream)
        index = 0
        rotation = 0
        coded_size = (0, 0)
        reformatter = VideoReformatter()
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                if index == 0:
                    raise InvalidInputError(
                        f"The driving video cannot be decoded ({exc})."
                    ) from exc
                logger.warning("driving video breaks off after %d frames: %s", index, exc)
                break
            if index == 0:
                check_video_size(frame.width, frame.height, limits)
                rotation = display_rotation(frame, stream)
                coded_size = fit_within(frame.width, frame.height, max_side)
            check_frame_count(index + 1, limits)
            ts = frame.pts if frame.pts is not None else frame.dts
            time = ts * time_base if ts is not None and time_base else None
            if time is not None:
                check_duration(time, limits)
            duration = frame.duration * time_base if frame.duration and time_base else None
            yield DecodedFrame(
                index, time, duration, rate, frame, rotation, coded_size, reformatter
            )
            index += 1
        if index == 0:
            raise InvalidInputError("The driving video contains no frames.")
    finally:
        container.close()


def read_frames(
    path: str | os.PathLike[str],
    limits: MediaLimits | None = None,
    *,
    max_side: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield the frames of the video at `path` as upright HxWx3 uint8 RGB arrays."""
    for frame in decode_frames(path, limits, max_side=max_side):
        yield frame.rgb()


@dataclass
class RateMeter:
    """Accumulates frame timestamps over one pass; gives the count and average rate."""

    frames: int = 0
    first: float | None = None
    last: float | None = None
    last_duration: float | None = None
    declared: Fraction | None = None

    def add(self, frame: DecodedFrame) -> None:
        """Count one frame."""
        self.frames += 1
        self.declared = frame.stream_rate
        if frame.time is not None:
            self.first = frame.time if self.first is None else min(self.first, frame.time)
            if self.last is None or frame.time >= self.last:
                self.last, self.last_duration = frame.time, frame.duration

    def span(self) -> float:
        """Seconds from the first frame's start to the last frame's end (0 if unknown)."""
        if self.first is None or self.last is None:
            return 0.0
        step = self.last_duration
        if not step:
            step = (self.last - self.first) / (self.frames - 1) if self.frames > 1 else 0.0
        return self.last - self.first + step

    def rate(self) -> Fraction:
        """Average rate (frames per second); variable-rate input becomes its average."""
        return average_rate(self.frames, self.span(), self.declared)
