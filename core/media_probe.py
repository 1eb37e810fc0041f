"""Validate uploads by their content, before a job is queued (torch-free).

`probe_image` and `probe_video` read headers first and refuse what is over a limit
before decoding any pixel (a small file may declare a huge picture: a decompression
bomb), then decode just enough to be sure the file is usable. Each error message is
written for the person who sent the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import av.error
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from core.errors import InputTooLargeError, InvalidInputError, UnsupportedMediaError

logger = logging.getLogger(__name__)

# Pillow format names we accept for the photo (MPO: the JPEG variant some cameras write).
IMAGE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
# Tokens of FFmpeg demuxer names we accept for the driving video
# ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "gif").
VIDEO_FORMATS = frozenset({"mov", "mp4", "matroska", "webm", "avi", "gif"})
VIDEO_KINDS = "MP4, MOV, WebM, MKV, AVI or animated GIF"
IMAGE_KINDS = "JPEG, PNG or WebP"
# The longer side pictures are worked at: a pasted-back result (MCNET_MAX_OUTPUT_SIDE's
# default), driving frames as read for cropping, face detection's largest search.
MAX_WORKING_SIDE = 1920


class MediaLimits(BaseModel):
    """Limits on uploaded media; the defaults admit a 10-minute 4K phone video.

    API and worker settings include these fields (`MCNET_MAX_VIDEO_FRAMES`, ...), so both
    check uploads against the same values.
    """

    model_config = ConfigDict(frozen=True)

    max_image_pixels: int = Field(
        default=40_000_000, gt=0, description="Largest source photo, width x height."
    )
    max_image_side: int = Field(default=16_384, gt=0, description="Longest side of a photo.")
    max_video_pixels: int = Field(
        default=4096 * 2304, gt=0, description="Largest driving frame, width x height."
    )
    max_video_side: int = Field(default=4096, gt=0, description="Longest side of a video.")
    max_video_frames: int = Field(default=36_000, gt=0, description="Most driving frames.")
    max_video_seconds: float = Field(default=600.0, gt=0, description="Longest driving video.")
    max_output_side: int = Field(
        default=MAX_WORKING_SIDE,
        ge=256,
        description="Longer side of a pasted-back result: a larger photo is scaled down to "
        "it, and the job's warnings say so.",
    )


@dataclass(frozen=True)
class ImageInfo:
    """A probed image: size as displayed (after EXIF orientation), Pillow format and mode."""

    width: int
    height: int
    format: str
    mode: str


@dataclass(frozen=True)
class VideoInfo:
    """A probed video: display size (after rotation), exact frame count, average rate."""

    width: int
    height: int
    frames: int
    fps: float
    duration: float
    has_audio: bool


def fit_within(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled down (never up) so the longer side is at most `max_side`."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def well_short(frames: int, declared: int) -> bool:
    """Whether a clip of `frames` falls well short of the `declared` count (by more than a
    tenth and at least 2 frames): a truncated or damaged file, not rounding."""
    return declared > 0 and frames < declared - max(2, declared // 10)


def check_frame_count(frames: int, limits: MediaLimits) -> None:
    """Refuse a driving video of more frames than the limit."""
    if frames > limits.max_video_frames:
        raise InputTooLargeError(
            f"The driving video has more than {limits.max_video_frames} frames; please send "
            "a shorter video."
        )


def check_duration(seconds: float, limits: MediaLimits) -> None:
    """Refuse a driving video that lasts longer than the limit (1% slack for rounding)."""
    if seconds > limits.max_video_seconds * 1.01:
        raise InputTooLargeError(
            f"The driving video lasts {seconds:.0f} s; the limit is "
            f"{limits.max_video_seconds:.0f} s. Please send a shorter video."
        )


def _check_not_empty(path: Path, what: str) -> None:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise InvalidInputError(f"The {what} could not be read.") from exc
    if size == 0:
        raise InvalidInputError(f"The {what} is an empty file.")


def check_image_size(width: int, height: int, limits: MediaLimits) -> None:
    """Refuse a picture whose declared size is zero or over the limits."""
    if width <= 0 or height <= 0:
        raise InvalidInputError("The photo has no pixels (its header says 0x0).")
    if max(width, height) > limits.max_image_side or width * height > limits.max_image_pixels:
        raise InputTooLargeError(
            f"The photo is {width}x{height} pixels; the limit is {limits.max_image_pixels:,} "
            f"pixels and {limits.max_image_side} per side. Please send a smaller picture."
        )


class Photo(NamedTuple):
    """A decoded photo, upright by its EXIF orientation, with its file's format and mode."""

    image: Image.Image
    format: str
    mode: str


@contextlib.contextmanager
def _photo(path: Path, limits: MediaLimits) -> Iterator[Image.Image]:
    """The photo at `path` opened and checked from its header (kind, size); errors while
    opening it or while decoding it in the `with` body become our errors."""
    _check_not_empty(path, "photo")
    try:
        with Image.open(path) as img:
            if img.format not in IMAGE_FORMATS:
                raise UnsupportedMediaError(
                    f"The photo is a {img.format or 'unknown'} file; please send {IMAGE_KINDS}."
                )
            check_image_size(img.width, img.height, limits)
            yield img
    except Image.DecompressionBombError as exc:
        raise InputTooLargeError("The photo declares far too many pixels.") from exc
    except UnidentifiedImageError as exc:
        if _looks_like_video(path):
            raise UnsupportedMediaError(
                f"The photo is a video, not a still picture; please send {IMAGE_KINDS} as "
                "the photo (source) and the video as the driving video (driving)."
            ) from exc
        raise UnsupportedMediaError(
            f"The photo is not an image we can read; please send {IMAGE_KINDS}."
        ) from exc
    except (OSError, ValueError, SyntaxError, zlib.error, struct.error) as exc:
        raise InvalidInputError(f"The photo is damaged or truncated ({exc}).") from exc


def open_photo(path: str | os.PathLike[str], limits: MediaLimits | None = None) -> Photo:
    """Open, check and decode the photo at `path` (JPEG, PNG or WebP within `limits`).

    Raises UnsupportedMediaError (another kind of file), InputTooLargeError (over a
    limit, checked from the header before decoding) or InvalidInputError (empty, damaged).
    """
    with _photo(Path(path), limits or MediaLimits()) as img:
        img.load()
        return Photo(ImageOps.exif_transpose(img), str(img.format), img.mode)


# A PNG or WebP decodes only at full size (up to max_image_pixels x 3 bytes with OpenCV):
# one such decode at a time in a process, so concurrent uploads cannot add up to gigabytes.
FULL_DECODE = threading.Lock()


def open_reduced_photo(path: str | os.PathLike[str], limits: MediaLimits, side: int) -> Photo:
    """The photo upright and scaled down to at most `side` pixels per side (never up).

    A JPEG decodes reduced (the decoder scales by 1/2, 1/4 or 1/8); a PNG or WebP decodes
    whole, one at a time (FULL_DECODE), and the full-size pixels are freed at once."""
    with _photo(Path(path), limits) as img:
        fmt, mode = str(img.format), img.mode
        longest = max(img.width, img.height)
        if img.format in ("JPEG", "MPO"):
            scale = side / longest
            img.draft("RGB", (max(1, int(img.width * scale)), max(1, int(img.height * scale))))
            img.load()
            reduced = _reduce(img, side)
        else:
            orientation = _orientation(img)
            with FULL_DECODE:
                decoded = _decode_reduced(path, side)
                if decoded is None:  # a file OpenCV does not read: Pillow, whole
                    img.load()
                    reduced = _reduce(img, side)
                    img.close()  # the full-size pixels, before the next decode starts
                else:
                    reduced = decoded
                if decoded is not None and orientation != 1:
                    exif = Image.Exif()
                    exif[ExifTags.Base.Orientation] = orientation
                    reduced.info["exif"] = exif.tobytes()
        return Photo(ImageOps.exif_transpose(reduced), fmt, mode)


def _decode_reduced(path: str | os.PathLike[str], side: int) -> Image.Image | None:
    """The picture decoded by OpenCV (one BGR copy, where Pillow's WebP decoder holds
    several canvases) and scaled down to at most `side`; None when OpenCV cannot read it."""
    import cv2  # loaded by the first such photo, not by every process that probes

    with Image.open(path) as img:
        longest = max(img.size)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    for factor, reduced in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                            (2, cv2.IMREAD_REDUCED_COLOR_2)):  # fmt: skip
        if longest // factor >= side:  # decoded whole, scaled in place: less than a resize
            flags = reduced | cv2.IMREAD_IGNORE_ORIENTATION
            break
    bgr = cv2.imread(os.fspath(path), flags)
    if bgr is None:
        return None
    height, width = bgr.shape[:2]
    scale = side / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"})


def _reduce(img: Image.Image, side: int) -> Image.Image:
    """A copy of `img` at most `side` pixels per side (integer box reduction, then exact)."""
    factor = max(img.width, img.height) // side  # not below `side`; thumbnail() ends it
    if factor <= 1:
        reduced = img.copy()
    elif img.mode in _REDUCIBLE:
        reduced = img.reduce(factor)
    else:  # palette, 1-bit, 16-bit: nearest pixels are enough to look for a face
        size = (max(1, img.width // factor), max(1, img.height // factor))
        reduced = img.resize(size, Image.Resampling.NEAREST)
    if max(reduced.width, reduced.height) > side:
        reduced.thumbnail((side, side), Image.Resampling.BILINEAR)
    reduced.info = img.info  # the EXIF orientation
    if "exif" not in reduced.info and (exif := img.getexif()):
        reduced.info["exif"] = exif.tobytes()
    return reduced


def probe_image(path: str | os.PathLike[str], limits: MediaLimits | None = None) -> ImageInfo:
    """Check that `path` is a JPEG/PNG/WebP photo within `limits` whose pixels decode,
    holding at most a reduced copy of them: a JPEG decodes at 1/8 scale (the decoder
    scales), a PNG's image data is decompressed piece by piece and counted; a WebP decodes
    whole (its size is bounded by the limits). Errors as `open_photo`."""
    path = Path(path)
    with _photo(path, limits or MediaLimits()) as img:
        info = ImageInfo(img.width, img.height, str(img.format), img.mode)
        if _orientation(img) in (5, 6, 7, 8):
            info = ImageInfo(img.height, img.width, info.format, info.mode)
        if img.format == "PNG":
            _inflate_png(path, img)
        elif img.format in ("JPEG", "MPO"):
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
        else:
            with FULL_DECODE:  # a WebP: OpenCV holds one copy of its pixels, Pillow several
                import cv2  # loaded by the first WebP, not by every process that probes

                if cv2.imread(os.fspath(path), cv2.IMREAD_REDUCED_COLOR_8) is None:
                    img.load()
                    img.close()
        return info


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation, read from the header (a PNG's getexif would decode it all)."""
    if img.format != "PNG":
        return int(img.getexif().get(ExifTags.Base.Orientation, 1))
    raw = img.info.get("exif")
    if not raw:
        return 1
    exif = Image.Exif()
    exif.load(raw)
    return int(exif.get(ExifTags.Base.Orientation, 1))


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_PIECE = 1 << 20


def _inflate_png(path: Path, img: Image.Image) -> None:
    """Decompress a PNG's image data (IDAT) in pieces of 1 MiB and check its length, so
    a damaged or truncated file is refused without the whole picture in memory."""
    inflater = zlib.decompressobj()
    total = 0
    with open(path, "rb") as handle:
        handle.seek(8)
        header: bytes | None = None
        while True:
            length, kind = struct.unpack(">I4s", handle.read(8))
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                data = handle.read(length)
                if kind == b"IHDR":
                    header = data
                handle.seek(4, os.SEEK_CUR)
                continue
            left = length
            while left:
                data = handle.read(min(left, _PIECE))
                if not data:
                    raise ValueError("the file ends inside the image data")
                left -= len(data)
                while data:
                    total += len(inflater.decompress(data, _PIECE))
                    data = inflater.unconsumed_tail
            handle.seek(4, os.SEEK_CUR)
    if header is None or not inflater.eof:
        raise ValueError("the image data is incomplete")
    depth, colour, interlaced = header[8], header[9], header[12]
    row = (img.width * depth * _PNG_CHANNELS.get(colour, 4) + 7) // 8
    if not interlaced and total != img.height * (row + 1):
        raise ValueError("the image data has the wrong length")


def _looks_like_video(path: Path) -> bool:
    """Whether the file starts like a container we accept (so a failure means damage)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")  # MP4 / MOV
        or head.startswith(b"\x1a\x45\xdf\xa3")  # Matroska / WebM (EBML)
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
        or head.startswith((b"GIF87a", b"GIF89a"))
    )


def open_video_container(path: Path) -> Any:
    """Open `path` with PyAV as a video of an accepted container, or raise a domain error."""
    _check_not_empty(path, "driving video")
    try:
        container = av.open(os.fspath(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        if _looks_like_video(path):
            raise InvalidInputError(
                "The driving video is damaged or truncated: it cannot be opened."
            ) from exc
        raise UnsupportedMediaError(
            f"The driving video is not a video we can read; please send {VIDEO_KINDS}."
        ) from exc
    names = set(container.format.name.split(","))
    if any(name.endswith("_pipe") or name == "image2" for name in names):
        container.close()
        raise UnsupportedMediaError(
            f"The driving video is a photo, not a video; please send {VIDEO_KINDS} as the "
            "driving video (driving) and the photo as the photo (source)."
        )
    if not names & VIDEO_FORMATS:
        container.close()
        raise UnsupportedMediaError(
            f"The driving video is a {container.format.long_name or container.format.name} "
            f"file; please send {VIDEO_KINDS}."
        )
    if not container.streams.video:
        only_sound = bool(container.streams.audio)
        container.close()
        if only_sound:
            raise InvalidInputError("The driving video has sound but no video track.")
        raise InvalidInputError(
            "The driving video contains no readable video frames: it is empty, damaged or "
            "truncated."
        )
    if container.streams.video[0].codec_context is None:  # a codec FFmpeg does not know
        container.close()
        raise UnsupportedMediaError(
            f"The driving video's codec is not one we can decode; please send {VIDEO_KINDS}."
        )
    return container


def check_video_size(width: int, height: int, limits: MediaLimits) -> None:
    """Refuse a video whose declared frame size is zero or over the limits."""
    if width <= 0 or height <= 0:
        raise InvalidInputError("The driving video has no picture size; the file is damaged.")
    if max(width, height) > limits.max_video_side or width * height > limits.max_video_pixels:
        raise InputTooLargeError(
            f"The driving video is {width}x{height}; the limit is {limits.max_video_side} "
            "pixels per side (4K). Please send a smaller video."
        )


def display_rotation(frame: Any, stream: Any) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) to turn `frame` upright for display.

    Uses the display matrix side data (what phones write) and falls back to the legacy
    `rotate` tag (clockwise degrees) of the stream's metadata.
    """
    degrees = 0
    try:
        degrees = int(round(frame.rotation))
    except (AttributeError, TypeError, ValueError):
        degrees = 0
    if degrees == 0:
        tag = stream.metadata.get("rotate") if stream.metadata else None
        if tag and tag.lstrip("-").isdigit():
            degrees = -int(tag)
    return (int(round(degrees / 90.0)) * 90) % 360


def declared_rate(stream: Any) -> Fraction | None:
    """The frame rate a video stream's headers declare, if any."""
    rate = stream.average_rate or stream.guessed_rate
    return Fraction(rate) if rate else None


def average_rate(frames: int, span: float, declared: Fraction | None) -> Fraction:
    """Average frame rate of `frames` frames over `span` seconds (first to end of last).

    Keeps the declared exact rate (30000/1001...) when it agrees within 1%.
    """
    if frames <= 0 or span <= 0:
        return Fraction(declared) if declared else Fraction(25)
    measured = frames / span
    if declared and abs(float(declared) - measured) <= 0.01 * measured:
        return Fraction(declared)
    return Fraction(measured).limit_denominator(1001)


def _count_video_packets(container: Any, limits: MediaLimits) -> tuple[int, float]:
    """Demux (no decoding) the video track: frame count and time span in seconds."""
    stream = container.streams.video[0]
    tb = float(stream.time_base or Fraction(1, 90_000))
    count, first, last, last_dur = 0, None, None, 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            count += 1
            check_frame_count(count, limits)
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is not None:
                first = ts if first is None else min(first, ts)
                if last is None or ts >= last:
                    last, last_dur = ts, packet.duration or 0
    except av.error.FFmpegError as exc:
        if count == 0:
            raise InvalidInputError(
                "The driving video is damaged: no frame could be read."
            ) from exc
        logger.warning("driving video ends early (damaged or truncated): %s", exc)
    if first is None or last is None:
        return count, 0.0
    step = last_dur or ((last - first) / (count - 1) if count > 1 else 0)
    return count, (last - first + step) * tb


def probe_video(path: str | os.PathLike[str], limits: MediaLimits | None = None) -> VideoInfo:
    """Check that `path` is a decodable driving video within `limits`.

    Frame size and declared duration are checked from the headers, then the packets are
    counted without decoding (exact frame count, stops past the limit) and the first
    frame is decoded. Raises UnsupportedMediaError, InputTooLargeError or InvalidInputError.
    """
    limits = limits or MediaLimits()
    container = open_video_container(Path(path))
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        check_video_size(ctx.width, ctx.height, limits)
        if container.duration:
            check_duration(container.duration / 1e6, limits)
        frames, span = _count_video_packets(container, limits)
        if frames == 0:
            raise InvalidInputError("The driving video contains no frames.")
        declared = int(stream.frames or 0)  # from the index (MP4, MOV); 0: not declared
        if well_short(frames, declared):
            raise InvalidInputError(
                f"The driving video is damaged or truncated: it declares {declared} frames but "
                f"ends after {frames}. Please send the whole file."
            )
        check_duration(span, limits)
        rotation = _first_frame_rotation(container)
        fps = average_rate(frames, span, declared_rate(stream))
        width, height = (
            (ctx.height, ctx.width) if rotation in (90, 270) else (ctx.width, ctx.height)
        )
        return VideoInfo(
            width=width,
            height=height,
            frames=frames,
            fps=float(fps),
            duration=frames / float(fps),
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def _first_frame_rotation(container: Any) -> int:
    """Decode the first frame (proof the video decodes) and return its display rotation."""
    stream = container.streams.video[0]
    try:
        container.seek(0, stream=stream)
        for frame in container.decode(stream):
            return display_rotation(frame, stream)
    except av.error.FFmpegError as exc:
        raise InvalidInputError(f"The driving video cannot be decoded ({exc}).") from exc
    raise InvalidInputError("The driving video contains no decodable frame.")
