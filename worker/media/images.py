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
from PIL import Image, ImageOps, UnidentifiedImageError

from service.errors import InputTooLargeError, InvalidInputError, UnsupportedMediaError
from service.media_probe import IMAGE_FORMATS, IMAGE_KINDS, MediaLimits, check_image_size

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
    limits = limits or MediaLimits()
    try:
        if os.path.getsize(path) == 0:
            raise InvalidInputError("The photo is an empty file.")
        with Image.open(path) as img:
            if img.format not in IMAGE_FORMATS:
                raise UnsupportedMediaError(
                    f"The photo is a {img.format or 'unknown'} file; please send {IMAGE_KINDS}."
                )
            check_image_size(img.width, img.height, limits)
            img.load()
            upright = ImageOps.exif_transpose(img)
            rgb = _to_rgb(upright)
    except Image.DecompressionBombError as exc:
        raise InputTooLargeError("The photo declares far too many pixels.") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaError(
            f"The photo is not an image we can read; please send {IMAGE_KINDS}."
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError(f"The photo is damaged or truncated ({exc}).") from exc
    return cap_size(rgb, max_side)


def cap_size(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """`image` area-downscaled so its longer side is at most `max_side` (no upscaling)."""
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
