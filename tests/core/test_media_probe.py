"""core.media_probe: uploads validated by content, headers checked before decoding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import InputTooLargeError, InvalidInputError, UnsupportedMediaError
from core.media_probe import MediaLimits, probe_image, probe_video
from tests.media_factory import (
    CONTAINERS,
    Audio,
    face_image,
    image_bytes,
    pattern_frame,
    truncate,
    write_empty_video,
    write_garbage,
    write_gif,
    write_image,
    write_png_header,
    write_video,
)


def _frames(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    return [pattern_frame(i, width, height) for i in range(count)]


def test_module_is_torch_free() -> None:
    code = (
        "import sys, core.media_probe; sys.exit('torch' in sys.modules or 'worker' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_probe_image(tmp_path: Path, fmt: str) -> None:
    info = probe_image(write_image(tmp_path / "a", face_image(120, 90, 60, 45, 30), fmt=fmt))
    assert (info.width, info.height, info.format) == (120, 90, fmt)


def test_probe_image_reports_the_upright_size(tmp_path: Path) -> None:
    path = write_image(
        tmp_path / "a.jpg", face_image(120, 90, 60, 45, 30), fmt="JPEG", orientation=6
    )
    info = probe_image(path)
    assert (info.width, info.height) == (120, 90)


def test_probe_image_refusals(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        probe_image(tmp_path / "empty")
    with pytest.raises(UnsupportedMediaError):
        probe_image(write_garbage(tmp_path / "noise"))
    with pytest.raises(UnsupportedMediaError, match="GIF"):
        probe_image(write_gif(tmp_path / "a.gif", _frames(2)))
    with pytest.raises(UnsupportedMediaError, match="is a video, not a still picture"):
        probe_image(write_video(tmp_path / "v.mp4", _frames(2)))
    jpeg = write_image(tmp_path / "a.jpg", face_image(400, 300, 200, 150, 80), fmt="JPEG")
    with pytest.raises(InvalidInputError, match="truncated"):
        probe_image(truncate(jpeg, 0.5, tmp_path / "cut.jpg"))
    with pytest.raises(InputTooLargeError):
        probe_image(jpeg, MediaLimits(max_image_pixels=100_000))
    with pytest.raises(InputTooLargeError):
        probe_image(jpeg, MediaLimits(max_image_side=399))


def test_probe_image_png_data_is_checked_in_pieces(tmp_path: Path) -> None:
    picture = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    png = write_image(tmp_path / "a.png", picture, fmt="PNG")
    assert (probe_image(png).width, probe_image(png).height) == (500, 300)
    with pytest.raises(InvalidInputError, match="truncated"):
        probe_image(truncate(png, 0.6, tmp_path / "cut.png"))
    data = bytearray(png.read_bytes())
    start = data.index(b"IDAT") + 4 + 100
    data[start : start + 64] = bytes(64)  # damaged compressed data
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(InvalidInputError):
        probe_image(tmp_path / "bad.png")


def test_probe_image_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    with pytest.raises(InputTooLargeError):
        probe_image(write_png_header(tmp_path / "bomb.png", 50_000, 50_000))


@pytest.mark.parametrize("kind", sorted(CONTAINERS))
def test_probe_video_containers(tmp_path: Path, kind: str) -> None:
    path = write_video(tmp_path / f"v.{kind}", _frames(15, 66, 50), kind=kind, audio=Audio())
    info = probe_video(path)
    assert (info.width, info.height, info.frames) == (66, 50, 15)
    assert info.has_audio
    assert info.duration == pytest.approx(0.6, abs=0.05)
    assert info.fps == pytest.approx(15 / info.duration)


def test_probe_video_gif_rotation_and_silence(tmp_path: Path) -> None:
    info = probe_video(write_gif(tmp_path / "a.gif", _frames(4), fps=10))
    assert (info.frames, info.fps, info.has_audio) == (4, 10.0, False)
    rotated = write_video(tmp_path / "r.mp4", _frames(3, 64, 48), rotation=90)
    info = probe_video(rotated)
    assert (info.width, info.height) == (48, 64)


def test_probe_video_refusals(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        probe_video(tmp_path / "empty")
    with pytest.raises(UnsupportedMediaError):
        probe_video(write_garbage(tmp_path / "noise"))
    for fmt in ("PNG", "JPEG", "WEBP"):
        (tmp_path / "photo").write_bytes(image_bytes(pattern_frame(0, 32, 32), fmt))
        with pytest.raises(UnsupportedMediaError, match="is a photo, not a video") as refused:
            probe_video(tmp_path / "photo")
        assert "piped" not in str(refused.value), fmt
    with pytest.raises(InvalidInputError, match="no (readable )?video frames"):
        probe_video(write_empty_video(tmp_path / "zero.mp4"))
    video = write_video(tmp_path / "v.mp4", _frames(30))
    with pytest.raises(InvalidInputError, match="damaged or truncated") as info:
        probe_video(truncate(video, 0.7, tmp_path / "cut.mp4"))
    assert not isinstance(info.value, UnsupportedMediaError)


def test_a_truncated_video_with_its_index_at_the_front_is_refused(tmp_path: Path) -> None:
    frames = _frames(40, 128, 96)
    video = write_video(tmp_path / "fast.mp4", frames, faststart=True)
    assert probe_video(video).frames == 40
    cut = truncate(video, 0.45, tmp_path / "cut.mp4")
    with pytest.raises(InvalidInputError, match="declares 40 frames but ends after") as info:
        probe_video(cut)
    assert not isinstance(info.value, UnsupportedMediaError)


def test_probe_video_limits(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", _frames(30, 128, 96))
    with pytest.raises(InputTooLargeError, match="frames"):
        probe_video(video, MediaLimits(max_video_frames=29))
    with pytest.raises(InputTooLargeError, match="lasts"):
        probe_video(video, MediaLimits(max_video_seconds=1.0))
    with pytest.raises(InputTooLargeError, match="128x96"):
        probe_video(video, MediaLimits(max_video_side=127))
    with pytest.raises(InputTooLargeError):
        probe_video(video, MediaLimits(max_video_pixels=128 * 96 - 1))
    assert probe_video(video, MediaLimits(max_video_frames=30, max_video_seconds=1.2)).frames == 30


def test_probe_video_unknown_codec_is_unsupported(tmp_path: Path) -> None:
    video = write_video(tmp_path / "in.mp4", _frames(4), fps=10)
    renamed = tmp_path / "unknown.mp4"
    renamed.write_bytes(video.read_bytes().replace(b"avc1", b"zzzz"))
    with pytest.raises(UnsupportedMediaError, match="codec"):
        probe_video(renamed)
