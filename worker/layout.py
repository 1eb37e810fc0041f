"""layout=side_by_side: source | driving | result in one frame, at a common height."""

from __future__ import annotations

import cv2
import numpy as np


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """`image` scaled to `height` rows, keeping its aspect (even width)."""
    h, w = image.shape[:2]
    width = _even(w * height / h)
    if (h, w) == (height, width):
        return image
    interpolation = cv2.INTER_AREA if h > height else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interpolation)


def fit_height(shapes: list[tuple[int, ...]], height: int, max_width: int) -> int:
    """The even panel height, at most `height`, at which panels of these shapes (rows,
    columns, ...) side by side are at most `max_width` wide."""

    def width(rows: int) -> int:
        return sum(_even(shape[1] * rows / shape[0]) for shape in shapes)

    height = min(_even(height), max(2, int(max_width / sum(s[1] / s[0] for s in shapes)) // 2 * 2))
    while height > 2 and width(height) > max_width:
        height -= 2  # each panel's width rounds to even: a step or two below the ratio's
    return height


class SideBySide:
    """Composes frames of source | driving | result, each scaled to one even height."""

    def __init__(self, source: np.ndarray, height: int) -> None:
        self.height = _even(height)
        self._source = _fit_height(source, self.height)

    def size(
        self, driving_shape: tuple[int, ...], result_shape: tuple[int, ...]
    ) -> tuple[int, int]:
        """(width, height) of the composed frames for these driving and result shapes."""
        widths = [
            _even(shape[1] * self.height / shape[0])
            for shape in (self._source.shape, driving_shape, result_shape)
        ]
        return sum(widths), self.height

    def compose(self, driving: np.ndarray, result: np.ndarray) -> np.ndarray:
        """One HxWx3 uint8 frame: the source, this driving frame and this result side by side."""
        panels = [self._source, _fit_height(driving, self.height), _fit_height(result, self.height)]
        return np.ascontiguousarray(np.concatenate(panels, axis=1))
