"""layout=side_by_side stays within the output's longest side (worker.layout)."""

from __future__ import annotations

import numpy as np
import pytest

from worker.layout import SideBySide, fit_height


@pytest.mark.parametrize(
    ("photo", "driving", "height"),
    [
        ((1080, 1920), (1080, 1920), 720),  # three 16:9 panels at 720 rows: 3840 wide
        ((1920, 1080), (1080, 1920), 720),  # portrait | landscape | portrait: 2160 wide
        ((1080, 1080), (720, 1280), 720),
        ((600, 400), (144, 192), 600),  # already narrow enough: unchanged
    ],
)
def test_side_by_side_is_at_most_the_output_side(
    photo: tuple[int, int], driving: tuple[int, int], height: int
) -> None:
    shapes = [(*photo, 3), (*driving, 3), (*photo, 3)]
    fitted = fit_height(shapes, height, 1920)
    layout = SideBySide(np.zeros((*photo, 3), np.uint8), fitted)
    width, rows = layout.size(shapes[1], shapes[2])
    assert width <= 1920 and rows == fitted and rows % 2 == 0
    assert width > 1920 - 3 * 8 or fitted == height, "no smaller than it must be"
    frame = layout.compose(np.zeros((*driving, 3), np.uint8), np.zeros((*photo, 3), np.uint8))
    assert frame.shape == (rows, width, 3)
