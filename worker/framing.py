"""The crop framing rule: where the model's square crop goes around a face, for the photo
and for the driving clip alike.

MCNet was trained on VoxCeleb crops, and its keypoints and memory bank work as published
on faces framed that way. The rule's numbers are measured, not chosen: this project's
YuNet was run on 24 VoxCeleb framings published with this family of models: the MCNet
paper's figure `assets/compare-same-id.png` (8 driving frames and 8 source framings, each
the median over the four methods' outputs, which keep the source's framing), DaGAN's
`assets/visual_vox1.png` (3 source and 3 driving framings, likewise) and the demo driving
clips of DaGAN and TPSMM (the median over every 10th frame). As fractions of the crop side:

    face box's longer side (its height)      median 0.68, range 0.58 to 0.79
    face box width                           median 0.54, range 0.46 to 0.69
    eye line (YuNet's eyes), from the top    median 0.40, range 0.34 to 0.49
    face box centre, from the left           median 0.50, range 0.38 to 0.65
    gap between face box and crop edge       0.05 or more in 85 of the 91 frames measured

So a face is framed by a square of side = (the face box's longer side) / FACE_FRACTION,
centred on the box horizontally, with the eye line at EYE_LINE of the square's height.
The box's longer side sets the scale because it varied least over those framings
(standard deviation 8% of its mean, against 9% for the eye-to-mouth distance, 13% for the
box width and 16% for the eye distance). A driving clip gets ONE square for all its
frames (the model needs a steady camera): the rule's side (median over the sampled
faces), centred on the middle of the path the rule's centres take through the clip, grown
only where a face box would come closer than MIN_EDGE_GAP to its edge. Squares running
past the image are filled by repeating the edge pixels rather than shrunk, so the scale
never changes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.errors import NoFaceError
from core.face_detector import Box, FaceDetector

logger = logging.getLogger(__name__)

CROP_SIZE = 256  # the model's input and output size

FACE_FRACTION = 0.68  # the face box's longer side / the crop side (VoxCeleb median)
FACE_FRACTION_RANGE = (0.58, 0.79)  # its range over the VoxCeleb framings measured
EYE_LINE = 0.40  # height of the eye line / the crop side, from the top (VoxCeleb median)
EYE_LINE_RANGE = (0.34, 0.49)  # its range over the VoxCeleb framings measured
EYE_IN_BOX = 0.39  # eye line within the face box, from its top / its height (VoxCeleb
# median), for a box without landmarks
MIN_EDGE_GAP = 0.05  # least gap between a driving face box and the crop edge / crop side
GROWTH_REPORTED = 1.02  # a clip's crop grown by more than this is reported (less is jitter)


@dataclass(frozen=True)
class CropBox:
    """A square region of an image: columns x..x+side, rows y..y+side, which may run past
    the image's edges (that part is padded, see `cut`)."""

    x: int
    y: int
    side: int

    @classmethod
    def around(cls, cx: float, cy: float, side: float) -> CropBox:
        """The square of `side` pixels centred at (cx, cy), rounded to whole pixels."""
        side_px = max(2, round(side))
        return cls(int(round(cx - side_px / 2)), int(round(cy - side_px / 2)), side_px)

    def cut(self, image: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
        """The region of `image` (HxWx3 uint8) resized to size x size; where the region
        runs past the image, the image's edge pixels are repeated into it."""
        height, width = image.shape[:2]
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + self.side, width), min(self.y + self.side, height)
        if x0 >= x1 or y0 >= y1:
            raise ValueError(f"crop {self} does not overlap the {width}x{height} image")
        region = image[y0:y1, x0:x1]
        pad = (y0 - self.y, self.y + self.side - y1, x0 - self.x, self.x + self.side - x1)
        if any(pad):
            # replicated, not mirrored: a mirror of a face cut by the edge adds eyes
            region = cv2.copyMakeBorder(region, *pad, cv2.BORDER_REPLICATE)
        return resize_square(region, size)


def resize_square(image: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """`image` resized to size x size (area filter when shrinking, as the demo's anti-aliasing)."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.ascontiguousarray(image)
    shrink = height > size or width > size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def _framed(face: Box) -> tuple[float, float, float]:
    """(cx, cy, side) of the rule's square around one face."""
    side = max(face.width, face.height) / FACE_FRACTION
    eyes = face.eye_line
    if eyes is None:
        eyes = face.y0 + EYE_IN_BOX * face.height
    return face.center[0], eyes + (0.5 - EYE_LINE) * side, side


def frame_face(face: Box) -> CropBox:
    """The rule's crop around one face (a photo's)."""
    return CropBox.around(*_framed(face))


def source_crop(image: np.ndarray, detector: FaceDetector) -> CropBox:
    """The crop of the largest face of the photo; NoFaceError("source") if there is none."""
    face = detector.largest(image)
    if face is None:
        raise NoFaceError("source")
    return frame_face(face)


@dataclass(frozen=True)
class ClipFraming:
    """A driving clip's one crop, and what the user should know about it."""

    box: CropBox
    growth: float  # the crop's side / the rule's side (1.0: framed as the training data)
    warnings: tuple[str, ...]  # for the job's result


def frame_clip(faces: Sequence[Box]) -> ClipFraming:
    """One crop for a clip whose (same person's) faces are `faces`: the rule's square at
    the faces' median scale, centred on the middle of their path, grown about that centre
    where a face box would come closer than MIN_EDGE_GAP to its edge."""
    if not faces:
        raise NoFaceError("driving")
    framed = np.array([_framed(face) for face in faces])
    side = float(np.median(framed[:, 2]))
    cx = float(framed[:, 0].min() + framed[:, 0].max()) / 2
    cy = float(framed[:, 1].min() + framed[:, 1].max()) / 2
    reach = max(max(cx - f.x0, f.x1 - cx, cy - f.y0, f.y1 - cy) for f in faces)
    grown = max(side, reach / (0.5 - MIN_EDGE_GAP))
    growth = grown / side
    warnings: tuple[str, ...] = ()
    if growth > GROWTH_REPORTED:
        logger.info("driving crop: grown %.2fx to hold the head's motion", growth)
        warnings = (
            f"The head moves more than a crop framed like the model's training data can "
            f"hold, so the driving video's crop was enlarged {growth:.2f}x: the face is "
            f"smaller in it than the model expects, which can weaken or distort the "
            f"motion. A video where the head stays nearer one place animates better.",
        )
    return ClipFraming(CropBox.around(cx, cy, grown), growth, warnings)


class ClipFaceTrack:
    """Collects a driving clip's faces and frames the clip with one crop.

    Feed `add(frame)` with frames sampled through the clip (each frame's largest face is
    kept), then `framing()`: faces far from the median face (another person, a false
    detection) are dropped and the rest framed by `frame_clip`.
    """

    def __init__(self, detector: FaceDetector, max_side: int = 640) -> None:
        self.detector = detector
        self.max_side = max_side
        self.boxes: list[Box] = []
        self.sampled = 0

    def add(self, frame: np.ndarray) -> Box | None:
        """Detect the largest face of one sampled frame; returns it (or None)."""
        self.sampled += 1
        face = self.detector.largest(frame, self.max_side)
        if face is not None:
            self.boxes.append(face)
        return face

    def main_faces(self) -> list[Box]:
        """The boxes that belong to the clip's main face; NoFaceError("driving") if none.

        A box is the main face's if its size is within 0.5 to 2 of the median box's and it
        is within one face size of the median centre, or of a neighbouring sample (in time)
        that is the main face's: a head that travels far is followed, while a face that
        appears elsewhere (another person, a false detection) is dropped.
        """
        if not self.boxes:
            raise NoFaceError("driving")
        centers = np.array([b.center for b in self.boxes])
        sizes = np.array([max(b.width, b.height) for b in self.boxes])
        mid, size = np.median(centers, axis=0), float(np.median(sizes))
        sized = (sizes >= 0.5 * size) & (sizes <= 2.0 * size)
        keep = sized & (np.hypot(*(centers - mid).T) <= size)
        steps = np.hypot(*np.diff(centers, axis=0).T) <= size  # sample i to i + 1
        grew = True
        while grew:
            joins_previous = np.r_[False, keep[:-1] & steps]
            joins_next = np.r_[keep[1:] & steps, False]
            grown = keep | (sized & (joins_previous | joins_next))
            grew = bool((grown != keep).any())
            keep = grown
        kept = [b for b, k in zip(self.boxes, keep, strict=True) if k] or self.boxes
        if len(kept) < len(self.boxes):
            logger.info("driving crop: ignored %d outlying face boxes", len(self.boxes) - len(kept))
        return kept

    def framing(self) -> ClipFraming:
        """The clip's one crop; NoFaceError("driving") if no sample had a face."""
        faces = self.main_faces()
        logger.info("driving crop: faces in %d of %d sampled frames", len(self.boxes), self.sampled)
        return frame_clip(faces)
