"""Media the tests make: videos of each container and codec, photos, synthetic faces, damage.

Nothing is downloaded and nothing binary is committed. Faces are drawn with OpenCV
(skin ellipse, hair, ears, eyes with brows, nose, mouth, neck); OpenCV's YuNet detects
them with a confidence of ~0.9, so the real detector is exercised.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
from PIL import Image

# name -> (FFmpeg muxer, video encoder, pixel format, audio encoder or None)
CONTAINERS: dict[str, tuple[str, str, str, str | None]] = {
    "mp4": ("mp4", "libx264", "yuv420p", "aac"),
    "mov": ("mov", "libx264", "yuv420p", "pcm_s16le"),
    "webm": ("webm", "libvpx-vp9", "yuv420p", "libopus"),
    "mkv": ("matroska", "libx264", "yuv420p", "libopus"),
    "avi": ("avi", "mpeg4", "yuv420p", "libmp3lame"),
}

SKIN = (215, 170, 140)
HAIR = (60, 40, 30)
BACKGROUND = (200, 200, 200)


def draw_face(
    image: np.ndarray, cx: float, cy: float, size: float, *, mouth_open: float = 0.0
) -> np.ndarray:
    """Draw a frontal cartoon face on an RGB uint8 `image` in place (and return it).

    (cx, cy) is the centre of the face ellipse (about the nose), `size` the face's
    half-height-ish scale: the face ellipse is 0.8*size wide and 1.1*size tall; with hair,
    neck and ears the drawing spans about 1.2*size x 2.0*size. `mouth_open` in [0, 1].
    """

    def p(dx: float, dy: float) -> tuple[int, int]:
        return int(round(cx + dx * size)), int(round(cy + dy * size))

    def r(value: float) -> int:
        return max(1, int(round(value * size)))

    neck = (195, 150, 120)
    cv2.rectangle(image, p(-0.22, 0.3), p(0.22, 1.0), neck, -1)
    cv2.ellipse(image, p(0, -0.12), (r(0.5), r(0.6)), 0, 0, 360, HAIR, -1)
    for side in (-1, 1):
        cv2.ellipse(image, p(side * 0.41, 0), (r(0.06), r(0.12)), 0, 0, 360, neck, -1)
    cv2.ellipse(image, p(0, 0), (r(0.4), r(0.55)), 0, 0, 360, SKIN, -1)
    for side in (-1, 1):
        ex = side * 0.17
        cv2.ellipse(image, p(ex, -0.1), (r(0.09), r(0.045)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(image, p(ex, -0.1), r(0.035), (20, 30, 40), -1)
        cv2.line(image, p(ex - 0.1, -0.2), p(ex + 0.1, -0.2), HAIR, r(0.03))
    nose = np.array([p(0, -0.05), p(-0.06, 0.12), p(0.06, 0.12)], np.int32)
    cv2.fillPoly(image, [nose], (190, 140, 110))
    cv2.ellipse(
        image, p(0, 0.27), (r(0.14), r(0.05 + 0.06 * mouth_open)), 0, 0, 360, (170, 60, 60), -1
    )
    return image


def face_image(
    width: int,
    height: int,
    cx: float,
    cy: float,
    size: float,
    *,
    mouth_open: float = 0.0,
    background: tuple[int, int, int] = BACKGROUND,
) -> np.ndarray:
    """An HxWx3 RGB uint8 picture with one drawn face (see draw_face)."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = background
    return draw_face(image, cx, cy, size, mouth_open=mouth_open)


def pattern_frame(index: int, width: int, height: int) -> np.ndarray:
    """A frame with a gradient and a square that moves with `index` (no face)."""
    ys, xs = np.mgrid[0:height, 0:width]
    frame = np.stack(
        [(xs * 255 // max(1, width - 1)), (ys * 255 // max(1, height - 1)), np.full_like(xs, 128)],
        axis=2,
    ).astype(np.uint8)
    x = (index * 3) % max(1, width - 8)
    frame[2:10, x : x + 8] = 255
    return frame


def talking_face_frames(
    count: int,
    width: int = 192,
    height: int = 144,
    *,
    center: tuple[float, float] | None = None,
    size: float | None = None,
    jitter: float = 2.0,
) -> list[np.ndarray]:
    """Frames of a drawn face that talks (mouth) and jitters by up to `jitter` pixels."""
    cx, cy = center or (width / 2, height * 0.45)
    size = size or height * 0.32
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        dx, dy = rng.uniform(-jitter, jitter, 2)
        mouth = 0.5 + 0.5 * np.sin(i * 0.8)
        frames.append(face_image(width, height, cx + dx, cy + dy, size, mouth_open=mouth))
    return frames


def sine(seconds: float, rate: int = 44_100, channels: int = 2, freq: float = 440.0) -> np.ndarray:
    """channels x samples float32 tone."""
    t = np.arange(int(round(seconds * rate))) / rate
    tone = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(tone[None], channels, axis=0)


@dataclass(frozen=True)
class Audio:
    """Sound for write_video: a tone of `seconds` (None: as long as the video)."""

    seconds: float | None = None
    rate: int = 48_000
    channels: int = 2
    codec: str | None = None  # None: the container's usual codec (CONTAINERS)


def _add_audio(container: av.container.OutputContainer, codec: str, audio: Audio) -> av.AudioStream:
    layout = "mono" if audio.channels == 1 else "stereo"
    return cast(av.AudioStream, container.add_stream(codec, rate=audio.rate, layout=layout))


def _encode_audio(
    container: av.container.OutputContainer, stream: av.AudioStream, audio: Audio, seconds: float
) -> None:
    layout = "mono" if audio.channels == 1 else "stereo"
    ctx = stream.codec_context
    fmt = ctx.format.name if ctx.format is not None else "fltp"
    data = sine(audio.seconds if audio.seconds is not None else seconds, audio.rate, audio.channels)
    step = ctx.frame_size or 1024
    for start in range(0, data.shape[1], step):
        chunk = data[:, start : start + step]
        if fmt == "s16":
            frame = av.AudioFrame.from_ndarray(
                (chunk.T.reshape(1, -1) * 32767).astype(np.int16), format="s16", layout=layout
            )
        elif fmt == "s16p":
            frame = av.AudioFrame.from_ndarray(
                (chunk * 32767).astype(np.int16), format="s16p", layout=layout
            )
        elif fmt == "flt":
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk.T.reshape(1, -1)), format="flt", layout=layout
            )
        else:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout=layout
            )
        frame.sample_rate = audio.rate
        frame.pts = start
        frame.time_base = Fraction(1, audio.rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def write_video(
    path: str | os.PathLike[str],
    frames: Sequence[np.ndarray] | Callable[[int], np.ndarray],
    *,
    count: int | None = None,
    kind: str = "mp4",
    fps: int = 25,
    codec: str | None = None,
    pix_fmt: str | None = None,
    audio: Audio | None = None,
    rotation: int = 0,
    times: Sequence[float] | None = None,
    faststart: bool = False,
) -> Path:
    """Write a video of `frames` (a list, or a function of the index with `count`).

    kind: a CONTAINERS key. rotation: counter-clockwise degrees stored as a display matrix
    (phones store their portrait videos this way). times: presentation times in seconds
    (a variable frame rate), else 1/fps apart. faststart: the MP4's index at the front.
    """
    muxer, default_codec, default_pix, audio_codec = CONTAINERS[kind]
    n = len(frames) if not callable(frames) else int(count or 0)
    first = frames(0) if callable(frames) else frames[0]
    height, width = first.shape[:2]
    options = {"movflags": "faststart"} if faststart else {}
    container = av.open(os.fspath(path), "w", format=muxer, options=options)
    stream = cast(av.VideoStream, container.add_stream(codec or default_codec, rate=fps))
    stream.width, stream.height = width, height
    stream.pix_fmt = pix_fmt or default_pix
    if times is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
    if rotation:
        stream.set_display_rotation(rotation)
    sound = _add_audio(container, audio.codec or str(audio_codec), audio) if audio else None
    for i in range(n):
        array = frames(i) if callable(frames) else frames[i]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
        frame.pts = int(round(times[i] * 1000)) if times is not None else i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    if audio is not None and sound is not None:
        _encode_audio(container, sound, audio, n / fps)
    container.close()
    return Path(path)


def write_gif(path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: int = 10) -> Path:
    """An animated GIF (Pillow: adaptive palette, `1000 / fps` ms per frame)."""
    images = [
        Image.fromarray(f).quantize(colors=64, method=Image.Quantize.MEDIANCUT) for f in frames
    ]
    images[0].save(
        os.fspath(path),
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=int(round(1000 / fps)),
        loop=0,
    )
    return Path(path)


def write_empty_video(path: str | os.PathLike[str]) -> Path:
    """An MP4 with a video track and no frames."""
    container = av.open(os.fspath(path), "w", format="mp4")
    stream = cast(av.VideoStream, container.add_stream("libx264", rate=25))
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()  # writes the header: a valid file with a video track
    container.close()
    return Path(path)


def truncate(path: str | os.PathLike[str], fraction: float, out: str | os.PathLike[str]) -> Path:
    """Copy the first `fraction` of the file's bytes to `out`."""
    data = Path(path).read_bytes()
    Path(out).write_bytes(data[: int(len(data) * fraction)])
    return Path(out)


def write_garbage(path: str | os.PathLike[str], size: int = 4096) -> Path:
    """Random bytes (a 'video' or 'photo' that is not one)."""
    Path(path).write_bytes(np.random.default_rng(1).integers(0, 256, size, np.uint8).tobytes())
    return Path(path)


# EXIF orientation -> the Pillow transpose that makes an upright picture look stored that way
_STORE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def write_image(
    path: str | os.PathLike[str],
    upright: np.ndarray,
    *,
    fmt: str = "PNG",
    orientation: int = 1,
    mode: str | None = None,
    alpha: np.ndarray | None = None,
    quality: int = 95,
) -> Path:
    """Save `upright` (HxWx3 RGB uint8) so that a viewer honouring EXIF shows it upright.

    orientation: EXIF orientation tag (the pixels are stored transformed accordingly).
    mode: convert to this Pillow mode first ("L", "I;16", "P", ...). alpha: HxW uint8.
    """
    image = Image.fromarray(upright)
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha))
    if mode == "I;16":
        gray = np.asarray(image.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(gray)  # uint16 -> mode I;16
    elif mode is not None:
        image = image.convert(mode)
    if orientation in _STORE:
        # ROTATE_90 is counter-clockwise; orientation 6 says "rotate 90 CW to view", so the
        # stored pixels are the upright ones turned 90 CCW (and so on for the others).
        image = image.transpose(_STORE[orientation])
    kwargs: dict[str, object] = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    image.save(os.fspath(path), format=fmt, **kwargs)
    return Path(path)


def write_png_header(path: str | os.PathLike[str], width: int, height: int) -> Path:
    """A tiny PNG whose header declares width x height (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    out = Path(path)
    out.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return out


def image_bytes(upright: np.ndarray, fmt: str = "PNG") -> bytes:
    """`upright` encoded in memory."""
    buffer = io.BytesIO()
    Image.fromarray(upright).save(buffer, format=fmt)
    return buffer.getvalue()


def decode_all(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Every frame of a (small) video as RGB arrays, with PyAV directly (no rotation)."""
    with av.open(os.fspath(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@dataclass(frozen=True)
class ProbedOutput:
    """What tests check of a written MP4."""

    frames: int
    fps: float
    width: int
    height: int
    video_codec: str
    pix_fmt: str
    audio_codec: str | None
    audio_seconds: float | None
    video_seconds: float
    moov_before_mdat: bool


def probe_output(path: str | os.PathLike[str]) -> ProbedOutput:
    """Decode a result MP4 completely and describe it."""
    data = Path(path).read_bytes()
    moov, mdat = data.find(b"moov"), data.find(b"mdat")
    with av.open(os.fspath(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        fps = float(video.average_rate or 0)
        codec, pix = video.codec_context.name, video.codec_context.pix_fmt
        width, height = video.codec_context.width, video.codec_context.height
        audio_codec = audio_seconds = None
        if container.streams.audio:
            stream = container.streams.audio[0]
            audio_codec = stream.codec.canonical_name
            container.seek(0)
            samples = sum(f.samples for f in container.decode(stream))
            audio_seconds = samples / stream.rate
    return ProbedOutput(
        frames=frames,
        fps=fps,
        width=width,
        height=height,
        video_codec=codec,
        pix_fmt=str(pix),
        audio_codec=audio_codec,
        audio_seconds=audio_seconds,
        video_seconds=frames / fps if fps else 0.0,
        moov_before_mdat=0 <= moov < mdat,
    )
