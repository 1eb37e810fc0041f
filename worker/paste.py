"""Paste each animated 256x256 face crop back into the full photo.

The crop is scaled back to its square in the photo and blended with a feathered mask:
fully the animated crop inside, fading to the still photo over the outer FEATHER part of
the square, so no seam shows where the crop's border meets the untouched photo. Where the
square runs past the photo's edge (the crop was padded there), that part is dropped and
the mask does not fade on that side: there is no photo beyond it to blend with.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.errors import InvalidInputError
from core.media_probe import MAX_WORKING_SIDE
from worker.framing import CropBox
from worker.media.images import cap_size

# Fraction of the crop's side over which the mask falls from 1 to 0 at each border.
# Wide enough to hide a colour step (the model re-renders the background too), narrow
# enough that hair and headwear above the face are the animated crop: in the training
# data's framing (worker.framing) the face box's top is only ~0.14 of the side below the
# crop's top, so the band stays well above it.
FEATHER = 0.06


def even_canvas(image: np.ndarray, max_side: int = MAX_WORKING_SIDE) -> np.ndarray:
    """The photo capped to `max_side` and trimmed by at most 1 px to even dimensions."""
    capped = cap_size(image, max_side)
    height, width = capped.shape[:2]
    if height < 2 or width < 2:
        raise InvalidInputError(f"The photo is too small ({width}x{height} pixels).")
    return np.ascontiguousarray(capped[: height - height % 2, : width - width % 2])


def _edge_ramp(side: int, ramp: float, start: bool, end: bool) -> np.ndarray:
    """1-D weights along one axis: smoothstep from 0 at a faded border to 1 inside."""
    index = np.arange(side, dtype=np.float64) + 0.5
    distance = np.full(side, np.inf)
    if start:
        distance = np.minimum(distance, index)
    if end:
        distance = np.minimum(distance, side - index)
    t = np.clip(distance / ramp, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def feather_mask(
    side: int,
    feather: float = FEATHER,
    *,
    fade: tuple[bool, bool, bool, bool] = (True, True, True, True),
) -> np.ndarray:
    """side x side float32 mask: 1 inside, smoothly (smoothstep) 0 at the square's border
    on the sides `fade` names (top, bottom, left, right)."""
    ramp = max(1.0, feather * side)
    top, bottom, left, right = fade
    return np.outer(_edge_ramp(side, ramp, top, bottom), _edge_ramp(side, ramp, left, right))


class Paster:
    """Blends animated crops into a fixed photo at a fixed square (`box`), which may run
    past the photo's edges (only the part inside the photo is pasted)."""

    def __init__(self, canvas: np.ndarray, box: CropBox, feather: float = FEATHER) -> None:
        height, width = canvas.shape[:2]
        x0, y0 = max(box.x, 0), max(box.y, 0)
        x1, y1 = min(box.x + box.side, width), min(box.y + box.side, height)
        if x0 >= x1 or y0 >= y1:
            raise ValueError(f"crop {box} does not overlap the {width}x{height} photo")
        self.box = box
        self.canvas = canvas
        self._out = canvas.copy()
        self._visible = (slice(y0, y1), slice(x0, x1))  # of the photo
        self._inside = (slice(y0 - box.y, y1 - box.y), slice(x0 - box.x, x1 - box.x))  # of the box
        self._region = np.ascontiguousarray(canvas[self._visible])
        # fade only where the square ends inside the photo, not at the photo's own edge
        fade = (box.y > 0, box.y + box.side < height, box.x > 0, box.x + box.side < width)
        mask = feather_mask(box.side, feather, fade=fade)
        self._mask = np.ascontiguousarray(mask[self._inside])
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
            np.ascontiguousarray(crop[self._inside]), self._region, self._mask, self._still_weight
        )
        self._out[self._visible] = blended
        return self._out
