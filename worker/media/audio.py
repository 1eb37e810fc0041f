"""The driving video's sound into the result MP4: copied when MP4 players take it, else AAC.

Both paths are streamed and interleaved with the video: after each video frame the
writer calls `pump(t)` and the sound up to time `t` is muxed. `finish(end)` writes the
rest and cuts the sound at the video's end. Times are relative to the driving video's
first frame, so sound and picture stay in sync when a file starts one before the other.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import av.error
import numpy as np

logger = logging.getLogger(__name__)

# Audio codecs an MP4 file carries that browsers and phones play: copied bit-exactly.
COPY_CODECS = frozenset({"aac", "mp3"})
AAC_RATES = (48_000, 44_100, 32_000, 24_000, 22_050, 16_000)
AAC_FRAME = 1024  # samples per AAC frame


class _AudioSource:
    """Shared part: the input file's first audio track and the time offset."""

    def __init__(self, path: str | os.PathLike[str], start: float) -> None:
        self.container = av.open(os.fspath(path), metadata_errors="ignore")
        self.in_stream = self.container.streams.audio[0]
        self.start = start
        self.broken = False

    def close(self) -> None:
        """Close the input file."""
        self.container.close()


class AudioCopier(_AudioSource):
    """Remuxes AAC/MP3 packets unchanged, dropping those outside [0, end)."""

    def __init__(self, path: str | os.PathLike[str], output: Any, start: float) -> None:
        super().__init__(path, start)
        self.out_stream = output.add_stream_from_template(self.in_stream)
        self.output = output
        self.time_base = self.in_stream.time_base or Fraction(1, self.in_stream.rate or 48_000)
        self._packets = self._read()
        self._pending: Any = None

    def _read(self) -> Iterator[Any]:
        try:
            for packet in self.container.demux(self.in_stream):
                if packet.size and packet.pts is not None:
                    yield packet
        except av.error.FFmpegError as exc:
            logger.warning("driving audio breaks off: %s", exc)

    def _next(self) -> Any:
        if self._pending is None:
            self._pending = next(self._packets, None)
        return self._pending

    def pump(self, until: float) -> None:
        """Mux the packets that start before `until` seconds."""
        shift = round(self.start / self.time_base)
        while (packet := self._next()) is not None:
            t = float(packet.pts * self.time_base) - self.start
            if t >= until:
                return
            self._pending = None
            duration = float((packet.duration or 0) * self.time_base)
            if t + duration <= 0:
                continue  # entirely before the first video frame
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.out_stream
            self.output.mux(packet)

    def finish(self, end: float) -> None:
        """Mux what starts before `end` seconds (the video's length) and drop the rest."""
        self.pump(end)
        self.close()


class AudioTranscoder(_AudioSource):
    """Decodes any audio, resamples to a rate AAC takes (stereo at most) and encodes AAC."""

    def __init__(
        self, path: str | os.PathLike[str], output: Any, start: float, bit_rate: int
    ) -> None:
        super().__init__(path, start)
        rate = self.in_stream.rate or 48_000
        self.rate = rate if rate in AAC_RATES else 48_000
        channels = self.in_stream.codec_context.channels or 2
        self.layout = "mono" if channels == 1 else "stereo"
        self.out_stream = output.add_stream("aac", rate=self.rate, layout=self.layout)
        self.out_stream.bit_rate = bit_rate
        self.output = output
        self.resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self.fifo = av.AudioFifo()
        self._frames = self._decode()
        self._written = 0  # samples sent to the encoder, including a leading gap
        self._skip: int | None = None  # samples to drop because they precede the video
        self._done = False

    def _decode(self) -> Iterator[Any]:
        try:
            for frame in self.container.decode(self.in_stream):
                yield from self.resampler.resample(frame)
        except av.error.FFmpegError as exc:
            logger.warning("driving audio breaks off: %s", exc)
        yield from self.resampler.resample(None)

    def _fill(self, target: int) -> None:
        """Decode until the FIFO holds the samples up to `target` (or the input ends)."""
        while not self._done and self._written + self.fifo.samples < target:
            frame = next(self._frames, None)
            if frame is None:
                self._done = True
                return
            if self._skip is None:
                offset = round(((frame.time or 0.0) - self.start) * self.rate)
                self._skip = max(0, -offset)
                self._written = max(0, offset)
            first = min(self._skip, frame.samples)
            self._skip -= first
            if first == frame.samples:
                continue
            data = np.ascontiguousarray(frame.to_ndarray()[:, first:])
            chunk = av.AudioFrame.from_ndarray(data, format="fltp", layout=self.layout)
            chunk.sample_rate = self.rate
            self.fifo.write(chunk)

    def _encode(self, samples: int) -> None:
        frame = self.fifo.read(samples, partial=True)
        if frame is None:
            return
        frame.pts = self._written
        frame.time_base = Fraction(1, self.rate)
        self._written += frame.samples
        for packet in self.out_stream.encode(frame):
            self.output.mux(packet)

    def pump(self, until: float) -> None:
        """Encode whole AAC frames of the sound up to `until` seconds."""
        target = round(until * self.rate)
        self._fill(target)
        while self.fifo.samples >= AAC_FRAME and self._written + AAC_FRAME <= target:
            self._encode(AAC_FRAME)

    def finish(self, end: float) -> None:
        """Encode up to exactly `end` seconds (the video's length), then flush the encoder."""
        limit = round(end * self.rate)
        self._fill(limit)
        while self.fifo.samples and self._written < limit:
            self._encode(min(AAC_FRAME, limit - self._written))
        for packet in self.out_stream.encode(None):
            self.output.mux(packet)
        self.close()


def open_audio(
    path: str | os.PathLike[str], output: Any, start: float, bit_rate: int
) -> AudioCopier | AudioTranscoder | None:
    """An audio muxer for the first audio track of `path` into `output`, or None if it has none."""
    try:
        with av.open(os.fspath(path), metadata_errors="ignore") as probe:
            if not probe.streams.audio:
                return None
            codec = probe.streams.audio[0].codec.canonical_name
    except av.error.FFmpegError as exc:
        logger.warning("driving audio unreadable, writing no sound: %s", exc)
        return None
    if codec in COPY_CODECS:
        return AudioCopier(path, output, start)
    logger.info("transcoding driving audio (%s) to AAC", codec)
    return AudioTranscoder(path, output, start, bit_rate)


# Containers the copied sound of a motion template is kept in: the MP4 family keeps an
# MP4/MOV track's timestamps as they are, Matroska a WebM/MKV track's (and takes any codec).
_MP4_FAMILY = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})


def copy_sound(path: str | os.PathLike[str]) -> tuple[bytes, str, str] | None:
    """The first sound track of `path` copied packet for packet (not re-encoded) into a
    container of its own: (its bytes, the codec, the muxer), or None if it has no sound.

    The packets keep their timestamps, so `open_audio(file of these bytes, ...,
    start=the video's first frame time)` muxes the same sound as from the video itself.
    """
    buffer = io.BytesIO()
    try:
        with av.open(os.fspath(path), metadata_errors="ignore") as source:
            if not source.streams.audio:
                return None
            stream = source.streams.audio[0]
            codec = stream.codec.canonical_name
            family = set(source.format.name.split(","))
            muxer = "mp4" if family & _MP4_FAMILY else "matroska"
            with av.open(buffer, "w", format=muxer) as output:
                copied = output.add_stream_from_template(stream)
                for packet in source.demux(stream):
                    if packet.size and packet.pts is not None:
                        packet.stream = copied
                        output.mux(packet)
    except av.error.FFmpegError as exc:
        logger.warning("driving audio unreadable, keeping no sound: %s", exc)
        return None
    return buffer.getvalue(), codec, muxer
