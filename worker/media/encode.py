"""Streamed MP4 writing with PyAV: H.264 yuv420p, faststart, sound from the driving video.

Frames go to the encoder one at a time; the sound is interleaved as the video grows
(see worker.media.audio) and cut at the video's end. Width and height must be even
(yuv420p halves both for the colour planes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from fractions import Fraction
from types import TracebackType
from typing import cast

import av
import numpy as np

from core.encoding import EncodeSettings
from worker.media.audio import AudioCopier, AudioTranscoder, open_audio

logger = logging.getLogger(__name__)

AUDIO_LEAD = 0.1  # seconds the muxed sound trails the video while streaming (see pump)
AUDIO_BIT_RATE = 128_000  # when the driving sound must be transcoded to AAC


def _h264_encoder() -> str:
    return "libx264" if "libx264" in av.codecs_available else "h264"


class Mp4Writer:
    """Writes RGB frames of one fixed even size to an MP4 file, with optional sound.

    Use as a context manager: on an exception the file is closed and left for the
    caller to delete; on success `close()` flushes the encoder and the sound.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: Fraction,
        *,
        settings: EncodeSettings | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        audio_start: float = 0.0,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"H.264 yuv420p needs a positive even size, got {width}x{height}")
        settings = settings or EncodeSettings()
        self.width, self.height, self.fps = width, height, Fraction(fps)
        self.frames = 0
        self._closed = False
        self.container = av.open(
            os.fspath(path), "w", format="mp4", options={"movflags": "+faststart"}
        )
        self.container.metadata.update(metadata or {})  # container tags: title, comment
        try:
            stream = cast(
                av.VideoStream,
                self.container.add_stream(
                    _h264_encoder(),
                    rate=self.fps,
                    options={"crf": str(settings.encode_crf), "preset": settings.encode_preset},
                ),
            )
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.time_base = 1 / self.fps
            self.stream = stream
            self.audio: AudioCopier | AudioTranscoder | None = None
            if audio_from is not None:
                self.audio = open_audio(audio_from, self.container, audio_start, AUDIO_BIT_RATE)
        except BaseException:
            self.container.close()
            raise

    @property
    def has_audio(self) -> bool:
        """Whether the file gets a sound track."""
        return self.audio is not None

    def write(self, frame: np.ndarray) -> None:
        """Encode one HxWx3 uint8 RGB frame of the writer's size."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame {frame.shape} {frame.dtype} != ({self.height}, {self.width}, 3) uint8"
            )
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.frames += 1
        if self.audio is not None:
            self.audio.pump(self.frames / self.fps - AUDIO_LEAD)

    def close(self) -> None:
        """Flush the video encoder, write the sound up to the video's end, finish the file."""
        if self._closed:
            return
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            if self.audio is not None:
                self.audio.finish(float(self.frames / self.fps))
        finally:
            self._closed = True
            self.container.close()

    def abort(self) -> None:
        """Close the file without flushing (the caller deletes it)."""
        if self._closed:
            return
        self._closed = True
        if self.audio is not None:
            self.audio.close()
        try:
            self.container.close()
        except av.error.FFmpegError as exc:
            logger.debug("closing an aborted MP4: %s", exc)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
