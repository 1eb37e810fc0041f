"""Loading the photo: formats, EXIF orientation, grayscale, 16-bit, alpha, size limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import InputTooLargeError, InvalidInputError, UnsupportedMediaError
from core.media_probe import MediaLimits
from tests.media_factory import (
    face_image,
    truncate,
    write_garbage,
    write_image,
    write_png_header,
)
from worker.media.images import cap_size, load_image


def _upright() -> np.ndarray:
    """An asymmetric picture (a face off-centre), so any wrong turn or flip shows."""
    return face_image(120, 90, 40, 40, 25)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_formats(tmp_path: Path, fmt: str) -> None:
    image = load_image(write_image(tmp_path / f"a.{fmt.lower()}", _upright(), fmt=fmt))
    assert image.shape == (90, 120, 3) and image.dtype == np.uint8
    assert _diff(image, _upright()) < 4


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(tmp_path: Path, orientation: int) -> None:
    path = write_image(tmp_path / "o.jpg", _upright(), fmt="JPEG", orientation=orientation)
    with Image.open(path) as stored:
        assert stored.getexif().get(0x0112, 1) == orientation
    image = load_image(path)
    assert image.shape == (90, 120, 3)
    assert _diff(image, _upright()) < 4


@pytest.mark.parametrize("mode", ["L", "I;16", "P", "CMYK"])
def test_other_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    image = load_image(write_image(tmp_path / "m.img", _upright(), fmt=fmt, mode=mode))
    assert image.shape == (90, 120, 3) and image.dtype == np.uint8
    if mode in ("L", "I;16"):
        assert np.array_equal(image[..., 0], image[..., 1])
        gray = np.asarray(Image.fromarray(_upright()).convert("L"))
        assert _diff(image[..., 0], gray) < 2


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    alpha = np.full((90, 120), 255, np.uint8)
    alpha[:, :30] = 0
    alpha[:, 30:60] = 128
    image = load_image(write_image(tmp_path / "a.png", _upright(), alpha=alpha))
    assert (image[:, :30] == 255).all()
    expected = (_upright()[:, 30:60].astype(float) + 255) / 2
    assert _diff(image[:, 30:60], expected) < 2
    assert _diff(image[:, 60:], _upright()[:, 60:]) < 1


def test_grayscale_with_alpha_and_palette_transparency(tmp_path: Path) -> None:
    alpha = np.zeros((90, 120), np.uint8)
    image = load_image(write_image(tmp_path / "la.png", _upright(), alpha=alpha, mode="LA"))
    assert image.shape == (90, 120, 3)
    assert (image == 255).all()
    palette = Image.fromarray(_upright()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    index = palette.getpixel((0, 0))  # the background's colour becomes transparent
    palette.save(tmp_path / "p.png", transparency=index)
    image = load_image(tmp_path / "p.png")
    assert (image[0, 0] == 255).all()
    assert not (image[45, 40] == 255).all()  # the face stays


def test_long_side_cap(tmp_path: Path) -> None:
    image = load_image(write_image(tmp_path / "a.png", _upright()), max_side=60)
    assert image.shape == (45, 60, 3)
    small = cap_size(_upright(), 500)
    assert small.shape == (90, 120, 3)


def test_refused_files(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(UnsupportedMediaError):
        load_image(write_garbage(tmp_path / "noise.jpg"))
    with pytest.raises(UnsupportedMediaError, match="BMP"):
        load_image(write_image(tmp_path / "a.bmp", _upright(), fmt="BMP"))
    jpeg = write_image(tmp_path / "a.jpg", face_image(400, 300, 200, 150, 80), fmt="JPEG")
    with pytest.raises(InvalidInputError, match="damaged or truncated") as info:
        load_image(truncate(jpeg, 0.5, tmp_path / "cut.jpg"))
    assert not isinstance(info.value, UnsupportedMediaError)


@pytest.mark.parametrize("size", [(8000, 8000), (60000, 60000)])
def test_huge_declared_size_is_refused_before_decoding(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    path = write_png_header(tmp_path / "bomb.png", *size)
    with pytest.raises(InputTooLargeError):
        load_image(path)


def test_pixel_limit(tmp_path: Path) -> None:
    with pytest.raises(InputTooLargeError, match="120x90"):
        load_image(write_image(tmp_path / "a.png", _upright()), MediaLimits(max_image_pixels=5000))
