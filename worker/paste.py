"""Paste each animated 256x256 face crop back into the full photo.

The crop is scaled back to its square in the photo and blended with a feathered mask:
fully the animated crop inside, fading to the still photo over the outer FEATHER part of
the square, so no seam shows where the crop's border meets the untouched photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.errors import InvalidInputError
from worker.face import CropBox
from worker.media.images import cap_size
from worker.media.settings import MAX_SIDE

# Fraction of the crop's side over which the mask falls from 1 to 0 at each border.
# Wide enough to hide a colour step (the model re-renders the background too), narrow
# enough that the head and hair, which sit inside the middle ~70% of the crop, are
# fully the animated crop.
FEATHER = 0.12


def even_canvas(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The photo capped to `max_side` and trimmed by at most 1 px to even dimensions."""
    capped = cap_size(image, max_side)
    height, width = capped.shape[:2]
    if height < 2 or width < 2:
        raise InvalidInputError(f"The photo is too small ({width}x{height} pixels).")
    return np.ascontiguousarray(capped[: height - height % 2, : width - width % 2])


def feather_mask(side: int, feather: float = FEATHER) -> np.ndarray:
    """side x side float32 mask: 1 inside, smoothly (smoothstep) 0 at the square's border."""
    ramp = max(1.0, feather * side)
    distance = np.minimum(np.arange(side), np.arange(side)[::-1]) + 0.5
    t = np.clip(distance / ramp, 0.0, 1.0)
    edge = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
    return np.outer(edge, edge)


class Paster:
    """Blends animated crops into a fixed photo at a fixed square (`box`)."""

    def __init__(self, canvas: np.ndarray, box: CropBox, feather: float = FEATHER) -> None:
        height, width = canvas.shape[:2]
        if box.x < 0 or box.y < 0 or box.x + box.side > width or box.y + box.side > height:
            raise ValueError(f"crop {box} is not inside the {width}x{height} photo")
        self.box = box
        self.canvas = canvas
        self._out = canvas.copy()
        region = canvas[box.y : box.y + box.side, box.x : box.x + box.side]
        self._region = np.ascontiguousarray(region)
        self._mask = feather_mask(box.side, feather)
        self._still_weight = 1.0 - self._mask

    def paste(self, crop: np.ndarray) -> np.ndarray:
        """Photo with the SxSx3 uint8 `crop` blended in (a buffer reused by the next call)."""
        side = self.box.side
        if crop.shape[:2] != (side, side):
            shrink = crop.shape[0] > side
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            crop = cv2.resize(crop, (side, side), interpolation=interpolation)
        # mask * crop + (1 - mask) * photo, rounded to uint8 (OpenCV does it in one pass)
        blended = cv2.blendLinear(
            np.ascontiguousarray(crop), self._region, self._mask, self._still_weight
        )
        y, x = self.box.y, self.box.x
        self._out[y : y + side, x : x + side] = blended
        return self._out
