"""Streamed decoding: every accepted container, rotation, variable rate, 10-bit, damage."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from core.errors import InputTooLargeError, InvalidInputError, UnsupportedMediaError
from core.media_probe import MediaLimits, fit_within
from tests.media_factory import (
    CONTAINERS,
    image_bytes,
    pattern_frame,
    talking_face_frames,
    truncate,
    write_empty_video,
    write_garbage,
    write_gif,
    write_video,
)
from worker.media.decode import RateMeter, decode_frames, read_frames
from worker.media.encode import Mp4Writer


def _meter(path: Path) -> RateMeter:
    meter = RateMeter()
    for frame in decode_frames(path):
        meter.add(frame)
    return meter


def _close(a: np.ndarray, b: np.ndarray, tolerance: float = 12.0) -> bool:
    return (
        a.shape == b.shape and float(np.abs(a.astype(float) - b.astype(float)).mean()) < tolerance
    )


@pytest.mark.parametrize("kind", sorted(CONTAINERS))
def test_each_container_decodes_every_frame(tmp_path: Path, kind: str) -> None:
    source = talking_face_frames(12)
    path = write_video(tmp_path / f"clip.{kind}", source, kind=kind)
    frames = list(read_frames(path))
    assert len(frames) == 12
    assert all(f.shape == (144, 192, 3) and f.dtype == np.uint8 for f in frames)
    assert _close(frames[5], source[5])
    meter = _meter(path)
    # mpeg4-in-AVI from PyAV's encoder leaves one empty slot: the timing is kept, so its
    # average rate is frames over the real span; the others are exactly 25 fps.
    assert meter.rate() == 25 or kind == "avi"
    assert abs(meter.span() - 12 / 25) < 0.05


def test_animated_gif(tmp_path: Path) -> None:
    source = talking_face_frames(6)
    frames = list(read_frames(write_gif(tmp_path / "a.gif", source, fps=10)))
    assert len(frames) == 6
    assert frames[0].shape == (144, 192, 3)
    assert _close(frames[3], source[3], 20)
    assert _meter(tmp_path / "a.gif").rate() == 10


def stored_for_display(upright: list[np.ndarray], rotation: int) -> list[np.ndarray]:
    """Pixels that, turned `rotation` degrees counter-clockwise, are `upright`."""
    return [np.ascontiguousarray(np.rot90(f, k=-rotation // 90)) for f in upright]


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path: Path, rotation: int) -> None:
    upright = talking_face_frames(3, width=128, height=96)
    path = write_video(tmp_path / "r.mp4", stored_for_display(upright, rotation), rotation=rotation)
    frames = list(read_frames(path))
    assert frames[0].shape == upright[0].shape
    assert _close(frames[1], upright[1])


def test_portrait_phone_video_is_upright(tmp_path: Path) -> None:
    upright = talking_face_frames(3, width=96, height=160)
    path = write_video(
        tmp_path / "p.mov", stored_for_display(upright, -90), kind="mov", rotation=-90
    )
    frames = list(read_frames(path))
    assert frames[0].shape == (160, 96, 3)
    assert _close(frames[2], upright[2])


def test_variable_frame_rate_keeps_every_frame_at_the_average_rate(tmp_path: Path) -> None:
    times = [0.0, 0.01, 0.02, 0.2, 0.21, 0.4, 0.45, 0.5, 0.55, 0.6, 0.61, 0.7, 0.8, 0.9, 0.95]
    path = write_video(
        tmp_path / "vfr.mp4", lambda i: pattern_frame(i, 64, 48), count=len(times), times=times
    )
    meter = _meter(path)
    assert meter.frames == len(times)
    assert abs(float(meter.rate()) - len(times) / meter.span()) < 0.01
    assert 0.95 <= meter.span() <= 1.1  # last frame start + its duration


@pytest.mark.parametrize(("kind", "codec"), [("mp4", "libx264"), ("mkv", "libx265")])
def test_ten_bit_input(tmp_path: Path, kind: str, codec: str) -> None:
    source = talking_face_frames(4)
    path = write_video(
        tmp_path / f"hdr.{kind}", source, kind=kind, codec=codec, pix_fmt="yuv420p10le"
    )
    frames = list(read_frames(path))
    assert len(frames) == 4 and frames[0].dtype == np.uint8
    assert _close(frames[2], source[2])


def test_max_side_downscales(tmp_path: Path) -> None:
    path = write_video(tmp_path / "big.mp4", lambda i: pattern_frame(i, 320, 240), count=2)
    frames = list(read_frames(path, max_side=160))
    assert frames[0].shape == (120, 160, 3)
    assert fit_within(320, 240, 400) == (320, 240)
    assert fit_within(240, 320, 160) == (120, 160)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        list(read_frames(tmp_path / "empty.mp4"))


def test_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMediaError):
        list(read_frames(write_garbage(tmp_path / "noise.mp4")))
    (tmp_path / "photo.mp4").write_bytes(image_bytes(pattern_frame(0, 32, 32)))
    with pytest.raises(UnsupportedMediaError):
        list(read_frames(tmp_path / "photo.mp4"))


def test_zero_frame_video(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no (readable )?video frames"):
        list(read_frames(write_empty_video(tmp_path / "zero.mp4")))


def test_truncated_mp4_is_refused(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", talking_face_frames(10))
    with pytest.raises(InvalidInputError, match="damaged or truncated") as info:
        list(read_frames(truncate(path, 0.6, tmp_path / "cut.mp4")))
    assert not isinstance(info.value, UnsupportedMediaError)


def test_truncated_matroska_gives_the_frames_before_the_cut(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mkv", talking_face_frames(20), kind="mkv")
    frames = list(read_frames(truncate(path, 0.6, tmp_path / "cut.mkv")))
    assert 1 <= len(frames) < 20


def test_frame_size_is_checked_before_decoding(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", lambda i: pattern_frame(i, 128, 96), count=2)
    with pytest.raises(InputTooLargeError):
        next(decode_frames(path, MediaLimits(max_video_side=100)))
    with pytest.raises(InputTooLargeError):
        next(decode_frames(path, MediaLimits(max_video_pixels=128 * 95)))


def test_frame_count_and_duration_limits(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", lambda i: pattern_frame(i, 64, 48), count=30)
    with pytest.raises(InputTooLargeError, match="frames"):
        list(read_frames(path, MediaLimits(max_video_frames=20)))
    with pytest.raises(InputTooLargeError, match="lasts"):
        list(read_frames(path, MediaLimits(max_video_seconds=0.5)))


def _peak_streaming(path: Path, out: Path) -> int:
    tracemalloc.start()
    with Mp4Writer(out, 320, 240, Fraction(25)) as writer:
        for frame in read_frames(path):
            writer.write(frame)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_memory_does_not_grow_with_video_length(tmp_path: Path) -> None:
    short = write_video(tmp_path / "s.mp4", lambda i: pattern_frame(i, 320, 240), count=10)
    long = write_video(tmp_path / "l.mp4", lambda i: pattern_frame(i, 320, 240), count=80)
    peak_short = _peak_streaming(short, tmp_path / "o1.mp4")
    peak_long = _peak_streaming(long, tmp_path / "o2.mp4")
    frame_bytes = 320 * 240 * 3
    assert peak_long < peak_short + 3 * frame_bytes, (peak_short, peak_long)
