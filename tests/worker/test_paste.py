"""Paste-back geometry: an animated crop lands where its face was in the photo."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InvalidInputError
from core.face_detector import FaceDetector
from tests.media_factory import face_image
from worker.framing import CropBox, source_crop
from worker.paste import FEATHER, Paster, even_canvas, feather_mask


def test_feather_mask_shape() -> None:
    mask = feather_mask(100)
    assert mask.shape == (100, 100) and mask.dtype == np.float32
    inner = int(np.ceil(FEATHER * 100))  # 6 px
    assert (mask[inner:-inner, inner:-inner] == 1).all()
    assert mask[0, 0] < 0.01 and mask[0, 50] < 0.05 and mask[50, 0] < 0.05
    assert np.allclose(mask, mask.T) and np.allclose(mask, mask[::-1, ::-1])
    row = mask[50, :50]
    assert (np.diff(row) >= 0).all()


def test_even_canvas() -> None:
    assert even_canvas(np.zeros((221, 301, 3), np.uint8)).shape == (220, 300, 3)
    assert even_canvas(np.zeros((1000, 4000, 3), np.uint8)).shape == (480, 1920, 3)
    with pytest.raises(InvalidInputError, match="too small"):
        even_canvas(np.zeros((1, 10, 3), np.uint8))


def test_pasting_the_crop_itself_gives_the_photo_back() -> None:
    canvas = even_canvas(face_image(301, 221, 150, 100, 45))
    box = source_crop(canvas, FaceDetector())
    paster = Paster(canvas, box)
    out = paster.paste(box.cut(canvas))
    assert out.shape == canvas.shape
    assert float(np.abs(out.astype(float) - canvas.astype(float)).mean()) < 1.0
    outside = np.ones(canvas.shape[:2], bool)
    outside[box.y : box.y + box.side, box.x : box.x + box.side] = False
    assert np.array_equal(out[outside], canvas[outside])


def test_a_face_lands_back_where_it_was() -> None:
    """Move the face inside the 256 crop by a known amount, paste back, find it again."""
    detector = FaceDetector()
    canvas = even_canvas(face_image(640, 480, 420, 200, 60))
    box = source_crop(canvas, detector)
    crop = box.cut(canvas)
    before = detector.largest(canvas)
    assert before is not None
    out = Paster(canvas, box).paste(crop)
    after = detector.largest(out)
    assert after is not None
    # YuNet's own jitter on a resampled picture is a pixel or two
    assert (
        abs(after.center[0] - before.center[0]) < 3 and abs(after.center[1] - before.center[1]) < 3
    )
    # a crop whose face is shifted 16 px right (in 256 space) lands shifted by 16 * side / 256
    shifted = np.roll(crop, 16, axis=1)
    moved = detector.largest(Paster(canvas, box).paste(shifted))
    assert moved is not None
    expected = before.center[0] + 16 * box.side / 256
    assert abs(moved.center[0] - expected) < 4


def test_marker_at_the_crop_centre_lands_at_the_box_centre() -> None:
    canvas = np.zeros((200, 300, 3), np.uint8)
    box = CropBox(150, 40, 128)
    crop = np.zeros((256, 256, 3), np.uint8)
    crop[120:136, 120:136] = 255  # 16 px square at the crop's centre
    out = Paster(canvas, box).paste(crop)
    ys, xs = np.nonzero(out[..., 0] > 128)
    assert abs(xs.mean() - (150 + 64)) < 1 and abs(ys.mean() - (40 + 64)) < 1
    assert xs.max() - xs.min() + 1 == pytest.approx(8, abs=1)


def test_box_off_the_photo_is_refused() -> None:
    with pytest.raises(ValueError, match="does not overlap"):
        Paster(np.zeros((100, 100, 3), np.uint8), CropBox(100, 0, 50))


def test_feather_mask_fades_only_the_named_sides() -> None:
    mask = feather_mask(100, fade=(False, True, True, False))  # fades bottom and left only
    assert (mask[0, 50:] == 1).all() and (mask[:50, -1] == 1).all()
    assert mask[-1, 50] < 0.05 and mask[50, 0] < 0.05
    assert np.array_equal(feather_mask(100, fade=(True,) * 4), feather_mask(100))


def test_a_square_past_the_edges_pastes_its_inside_unfaded() -> None:
    """A square running past the left and top edges (its crop was padded there): only the
    part inside the photo is pasted, fully the crop up to the photo's edge, and fading
    into the photo on the sides that end inside it."""
    canvas = np.full((120, 160, 3), 50, np.uint8)
    box = CropBox(-30, -20, 100)
    crop = np.full((100, 100, 3), 200, np.uint8)
    out = Paster(canvas, box).paste(crop)
    assert out.shape == canvas.shape
    assert (out[0, :50] == 200).all() and (out[:50, 0] == 200).all()  # no fade at the edges
    assert (out[79, :60] < 60).all() and (out[:70, 69] < 60).all()  # fades where it ends
    assert (out[80:] == 50).all() and (out[:, 70:] == 50).all()  # the rest is the photo


def test_a_face_at_the_edge_pastes_back_where_it_was() -> None:
    detector = FaceDetector()
    canvas = even_canvas(face_image(640, 480, 66, 90, 120))
    box = source_crop(canvas, detector)
    assert box.x < 0 and box.y < 0
    crop = box.cut(canvas)
    out = Paster(canvas, box).paste(crop)
    # the padded part is dropped; the rest is the photo again (up to resampling)
    assert float(np.abs(out.astype(float) - canvas.astype(float)).mean()) < 1.0
    # a marker at (u, v) of the 256 crop lands at the box's corner + (u, v) * side / 256
    marked = crop.copy()
    marked[120:136, 80:96] = (255, 0, 255)
    out = Paster(canvas, box).paste(marked)
    ys, xs = np.nonzero((out[..., 0] > 200) & (out[..., 1] < 60) & (out[..., 2] > 200))
    scale = box.side / 256
    assert abs(xs.mean() - (box.x + 88 * scale)) < 1 and abs(ys.mean() - (box.y + 128 * scale)) < 1


@pytest.mark.parametrize(
    ("width", "height", "cx", "cy", "size"),
    [
        (640, 480, 320, 240, 100),
        (640, 480, 200, 300, 60),
        (360, 640, 180, 200, 120),
        (640, 480, 60, 240, 100),  # at the left edge
    ],
)
def test_the_pasted_square_holds_the_head(
    width: int, height: int, cx: int, cy: int, size: int
) -> None:
    """On the drawn faces the pasted square's edge never cuts through the head (hair top
    at cy - 0.72 size, ears at +-0.47 size, chin at cy + 0.55 size), and the whole face box
    is fully the animated crop."""
    detector = FaceDetector()
    canvas = even_canvas(face_image(width, height, cx, cy, size))
    box = source_crop(canvas, detector)
    assert box.y < cy - 0.72 * size and box.y + box.side > cy + 0.55 * size
    assert box.x < max(0, cx - 0.47 * size) and box.x + box.side > min(width, cx + 0.47 * size)
    face = detector.largest(canvas)
    assert face is not None
    animated = np.full((256, 256, 3), 255, np.uint8)
    out = Paster(canvas, box).paste(animated)
    x0, y0 = max(0, int(face.x0)), max(0, int(face.y0))
    x1, y1 = min(width, int(np.ceil(face.x1))), min(height, int(np.ceil(face.y1)))
    assert (out[y0:y1, x0:x1] == 255).all()


def test_blend_follows_the_feather_mask() -> None:
    canvas = np.full((120, 160, 3), 50, np.uint8)
    box = CropBox(20, 10, 100)
    crop = np.full((100, 100, 3), 200, np.uint8)
    out = Paster(canvas, box).paste(crop)
    mask = feather_mask(100)[:, :, None]
    expected = mask * 200.0 + (1 - mask) * 50.0
    region = out[10:110, 20:120].astype(float)
    assert np.abs(region - expected).max() <= 1.0
    assert (region[50, 50] == 200).all() and (region[0, 0] <= 51).all()
