"""The framing rule on drawn faces: photo and driving crops framed like the training data.

Each crop is checked twice: exactly, with the face the rule was given (the rule's own
numbers, in the crop's coordinates), and as the model receives it, by finding the face
again in the 256x256 crop with YuNet and checking that its box and eye line fall in the
range measured on VoxCeleb frames (worker.framing's docstring).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import NoFaceError
from core.face_detector import Box, FaceDetector
from tests.media_factory import (
    draw_face,
    face_image,
    pattern_frame,
    talking_face_frames,
    write_video,
)
from worker.driving import driving_frames, scan_driving
from worker.framing import (
    EYE_LINE,
    EYE_LINE_RANGE,
    FACE_FRACTION,
    FACE_FRACTION_RANGE,
    GROWTH_REPORTED,
    MIN_EDGE_GAP,
    ClipFaceTrack,
    CropBox,
    frame_clip,
    frame_face,
    resize_square,
    source_crop,
)
from worker.media.settings import MediaSettings


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def _framing_in(crops: list[np.ndarray], detector: FaceDetector) -> tuple[float, float, float]:
    """(face box's longer side, eye line, box centre x) of the faces YuNet finds in crops,
    as fractions of the crop's side, each the median over the crops. YuNet misses some
    drawn faces with the mouth wide open, so a clip's crops are measured together."""
    found = []
    for crop in crops:
        face = detector.largest(crop)
        if face is not None and face.eye_line is not None:
            side = crop.shape[0]
            found.append(
                (max(face.width, face.height) / side, face.eye_line / side, face.center[0] / side)
            )
    assert len(found) >= (len(crops) + 1) // 2, "the face should still be found in its crops"
    fraction, eyes, center = np.median(np.array(found), axis=0)
    return float(fraction), float(eyes), float(center)


def _assert_framed_like_voxceleb(crops: list[np.ndarray], detector: FaceDetector) -> None:
    fraction, eyes, center = _framing_in(crops, detector)
    assert FACE_FRACTION_RANGE[0] <= fraction <= FACE_FRACTION_RANGE[1], fraction
    assert EYE_LINE_RANGE[0] <= eyes <= EYE_LINE_RANGE[1], eyes
    assert 0.4 <= center <= 0.6, center


def _assert_rule_holds(face: Box, box: CropBox) -> None:
    """The rule's numbers, in the crop's coordinates (up to the rounding to pixels)."""
    assert face.eye_line is not None
    assert box.side == round(max(face.width, face.height) / FACE_FRACTION)
    assert max(face.width, face.height) / box.side == pytest.approx(FACE_FRACTION, abs=0.01)
    assert (face.eye_line - box.y) / box.side == pytest.approx(EYE_LINE, abs=0.01)
    assert (face.center[0] - box.x) / box.side == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("width", "height", "cx", "cy", "size"),
    [
        (640, 480, 320, 240, 120),  # centred
        (640, 480, 66, 240, 120),  # at the left edge: the crop runs past it
        (640, 480, 574, 240, 120),  # at the right edge
        (640, 480, 320, 72, 120),  # at the top edge, hair cut by the frame
        (640, 480, 320, 408, 120),  # at the bottom edge
        (640, 480, 66, 90, 120),  # in the top-left corner
        (360, 640, 180, 96, 120),  # portrait photo, face at the top
        (240, 427, 120, 150, 80),  # portrait photo, face wider than a third of it
        (1600, 1200, 800, 600, 500),  # close-up, larger than YuNet sees at full size
        (300, 400, 150, 200, 220),  # a selfie: the crop is wider than the photo
    ],
)
def test_photo_crop_is_framed_like_the_training_data(
    detector: FaceDetector, width: int, height: int, cx: int, cy: int, size: int
) -> None:
    image = face_image(width, height, cx, cy, size)
    face = detector.largest(image)
    assert face is not None
    box = source_crop(image, detector)
    _assert_rule_holds(face, box)
    _assert_framed_like_voxceleb([box.cut(image)], detector)


def test_a_crop_past_the_edge_keeps_its_scale_and_is_padded(detector: FaceDetector) -> None:
    image = face_image(640, 480, 66, 90, 120)
    box = source_crop(image, detector)
    assert box.x < 0 and box.y < 0  # runs past the left and top edges...
    face = detector.largest(image)
    assert face is not None
    assert box.side == round(max(face.width, face.height) / FACE_FRACTION)  # ...not shrunk
    native = box.cut(image, size=box.side)
    # the part past the left edge repeats the image's first column, row by row
    rows = slice(-box.y, box.side)
    left = native[rows, : -box.x]
    assert np.array_equal(left, np.repeat(image[: box.side + box.y, :1], -box.x, axis=1))


def test_cut_repeats_the_edge_pixels() -> None:
    image = pattern_frame(0, 30, 20)
    cut = CropBox(-5, -3, 12).cut(image, size=12)
    assert np.array_equal(cut[3:, 5:], image[:9, :7])
    assert np.array_equal(cut[:3, 5:], np.repeat(image[:1, :7], 3, axis=0))
    assert np.array_equal(cut[3:, :5], np.repeat(image[:9, :1], 5, axis=1))
    assert (cut[:3, :5] == image[0, 0]).all()
    inside = CropBox(4, 2, 10).cut(image, size=10)
    assert np.array_equal(inside, image[2:12, 4:14])
    with pytest.raises(ValueError, match="does not overlap"):
        CropBox(30, 0, 10).cut(image)


def test_crop_none_resizes_the_whole_frame() -> None:
    assert resize_square(pattern_frame(0, 320, 240)).shape == (256, 256, 3)
    assert resize_square(pattern_frame(0, 100, 60)).shape == (256, 256, 3)


def test_no_face_in_the_photo(detector: FaceDetector) -> None:
    with pytest.raises(NoFaceError) as info:
        source_crop(pattern_frame(0, 320, 240), detector)
    assert info.value.which == "source"
    assert "photo" in str(info.value)


def test_largest_face_is_the_source(detector: FaceDetector) -> None:
    image = draw_face(face_image(640, 360, 450, 180, 90), 120, 180, 40)
    box = source_crop(image, detector)
    assert abs(box.x + box.side / 2 - 450) < 15


def test_a_box_without_landmarks_is_framed_from_its_own_height() -> None:
    box = frame_face(Box(100, 100, 160, 180))  # 60 x 80, no landmarks
    assert box.side == round(80 / FACE_FRACTION)
    assert box.x + box.side / 2 == pytest.approx(130, abs=1)


def _track(detector: FaceDetector, frames: list[np.ndarray]) -> ClipFaceTrack:
    track = ClipFaceTrack(detector)
    for frame in frames:
        assert track.add(frame) is not None
    return track


def _assert_holds_every_face(box: CropBox, faces: list[Box]) -> None:
    gap = MIN_EDGE_GAP * box.side - 1  # a pixel of rounding
    for f in faces:
        assert f.x0 - box.x >= gap and f.y0 - box.y >= gap
        assert box.x + box.side - f.x1 >= gap and box.y + box.side - f.y1 >= gap


def test_still_clip_is_framed_by_the_rule_without_warning(detector: FaceDetector) -> None:
    frames = talking_face_frames(12, 480, 360, size=100, jitter=3)
    track = _track(detector, frames)
    framing = track.framing()
    assert framing.growth == 1.0 and framing.warnings == ()
    sides = [frame_face(f).side for f in track.boxes]
    assert framing.box.side == pytest.approx(float(np.median(sides)), abs=1)
    _assert_holds_every_face(framing.box, track.boxes)
    _assert_framed_like_voxceleb([framing.box.cut(f) for f in frames], detector)


def test_clip_crop_grows_and_says_so_when_the_head_moves_too_far(
    detector: FaceDetector,
) -> None:
    """A head bobbing up and down by +-0.3 face sizes leaves the rule's square (its faces
    come within MIN_EDGE_GAP of the edge): the square grows about the path's middle."""
    size = 80
    frames = [
        face_image(480, 480, 240, 240 + 0.3 * size * np.sin(i * np.pi / 4), size) for i in range(16)
    ]
    track = _track(detector, frames)
    framing = track.framing()
    rule_side = float(np.median([frame_face(f).side for f in track.boxes]))
    assert framing.growth > GROWTH_REPORTED
    assert framing.box.side == pytest.approx(rule_side * framing.growth, abs=1)
    assert len(framing.warnings) == 1 and "enlarged" in framing.warnings[0]
    _assert_holds_every_face(framing.box, track.boxes)
    # the same path, half as wide, still fits at the rule's scale
    calm = [
        face_image(480, 480, 240, 240 + 0.1 * size * np.sin(i * np.pi / 4), size) for i in range(16)
    ]
    assert _track(detector, calm).framing().warnings == ()


def test_clip_without_faces(detector: FaceDetector) -> None:
    track = ClipFaceTrack(detector)
    track.add(pattern_frame(0, 160, 120))
    with pytest.raises(NoFaceError) as info:
        track.framing()
    assert info.value.which == "driving"
    with pytest.raises(NoFaceError):
        frame_clip([])


def test_clip_track_ignores_another_face(detector: FaceDetector) -> None:
    """Two samples in a row show another, larger face elsewhere (a cut, another person)."""
    frames = talking_face_frames(8, 480, 240, center=(120, 110), size=50, jitter=1)
    stray = face_image(480, 240, 380, 110, 70)
    track = _track(detector, [*frames[:4], stray, stray, *frames[4:]])
    assert len(track.main_faces()) == 8
    framing = track.framing()
    assert framing.box.x + framing.box.side < 300 and framing.warnings == ()


def test_clip_track_follows_a_head_that_travels_far(detector: FaceDetector) -> None:
    """A head crossing the frame (3 face sizes either side of its median place, in small
    steps) is one face, not outliers: the crop grows to hold its path and says so."""
    frames = [face_image(640, 360, 100 + 440 * i / 15, 180, 60) for i in range(16)]
    track = _track(detector, frames)
    assert len(track.main_faces()) == 16
    framing = track.framing()
    assert framing.growth > 2 and len(framing.warnings) == 1
    _assert_holds_every_face(framing.box, track.boxes)


def test_portrait_phone_video_is_framed_like_the_training_data(
    tmp_path: Path, detector: FaceDetector
) -> None:
    """A portrait video stored sideways with a rotation (as phones do), the face at the
    top and nearly as wide as the frame: the crop runs past the frame's sides and top."""
    upright = talking_face_frames(8, 120, 214, center=(60, 60), size=90, jitter=1)
    stored = [np.ascontiguousarray(np.rot90(f, k=1)) for f in upright]
    path = write_video(tmp_path / "portrait.mov", stored, kind="mov", rotation=-90)
    settings = MediaSettings(detect_samples=8)
    scan = scan_driving(path, settings, detector=detector, estimate=8, tick=lambda _: None)
    assert (scan.width, scan.height) == (120, 214) and scan.crop is not None
    assert scan.warnings == ()
    box = scan.crop
    assert box.x < 0 and box.x + box.side > 120 and box.y < 0
    crops = [crop for _, crop in driving_frames(path, scan, settings, lambda _: None)]
    assert len(crops) == 8
    _assert_framed_like_voxceleb(crops, detector)


def test_driving_scan_reports_the_growth(tmp_path: Path, detector: FaceDetector) -> None:
    size = 60
    frames = [
        face_image(320, 320, 160 + 0.5 * size * np.sin(i * np.pi / 4), 160, size) for i in range(16)
    ]
    path = write_video(tmp_path / "sway.mp4", frames)
    settings = MediaSettings(detect_samples=16)
    scan = scan_driving(path, settings, detector=detector, estimate=16, tick=lambda _: None)
    assert len(scan.warnings) == 1 and "enlarged" in scan.warnings[0]


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


@pytest.mark.parametrize(
    ("width", "height", "center", "size"),
    [
        (480, 360, (240, 170), 100),  # landscape, centred
        (270, 480, (135, 120), 100),  # portrait, face at the top
        (480, 360, (70, 180), 100),  # at the left edge
    ],
)
def test_photo_and_driving_crops_agree_in_scale(
    tmp_path: Path,
    detector: FaceDetector,
    width: int,
    height: int,
    center: tuple[int, int],
    size: int,
) -> None:
    """The same face as a photo and as a talking clip is cropped at the same scale."""
    photo = face_image(width, height, *center, size)
    photo_box = source_crop(photo, detector)
    path = write_video(
        tmp_path / "same.mp4", talking_face_frames(12, width, height, center=center, size=size)
    )
    settings = MediaSettings(detect_samples=12)
    scan = scan_driving(path, settings, detector=detector, estimate=12, tick=lambda _: None)
    assert scan.crop is not None and scan.warnings == ()
    assert scan.crop.side == pytest.approx(photo_box.side, rel=0.06)
    photo_fraction, photo_eyes, _ = _framing_in([photo_box.cut(photo)], detector)
    crops = [crop for _, crop in driving_frames(path, scan, settings, lambda _: None)]
    driving_fraction, driving_eyes, _ = _framing_in(crops, detector)
    assert abs(photo_fraction - driving_fraction) < 0.06
    assert abs(photo_eyes - driving_eyes) < 0.06
