"""Load the photo: JPEG/PNG/WebP, upright by its EXIF orientation, as RGB uint8.

Grayscale and 16-bit pictures become RGB, transparency is composited on white (the
model sees no alpha), and the longer side is capped. The size is checked from the
header before any pixel is decoded.
"""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np
from PIL import Image

from core.media_probe import MediaLimits, fit_within, open_photo

logger = logging.getLogger(__name__)

BACKGROUND = (255, 255, 255)  # what transparent pixels become


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> HxWx3 uint8 RGB (alpha composited on BACKGROUND)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        gray = np.clip(values * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if img.mode == "F":
        gray = np.clip(np.asarray(img, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        canvas.alpha_composite(rgba)
        return np.asarray(canvas.convert("RGB"), dtype=np.uint8).copy()
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def load_image(
    path: str | os.PathLike[str],
    limits: MediaLimits | None = None,
    *,
    max_side: int | None = None,
) -> np.ndarray:
    """The photo at `path` as an upright HxWx3 uint8 RGB array.

    `max_side` caps the longer side (area downscaling; never upscales). Raises
    UnsupportedMediaError, InputTooLargeError (checked from the header) or InvalidInputError.
    """
    rgb = _to_rgb(open_photo(path, limits).image)
    return cap_size(rgb, max_side)


def cap_size(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """`image` area-downscaled so its longer side is at most `max_side` (no upscaling)."""
    height, width = image.shape[:2]
    size = fit_within(width, height, max_side)
    if size == (width, height):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
