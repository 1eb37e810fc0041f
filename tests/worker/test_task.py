"""run_animation end to end with the real Animator over tiny untrained networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import (
    InvalidInputError,
    InvalidOptionsError,
    JobCanceledError,
    NoFaceError,
    UnsupportedMediaError,
)
from core.face_detector import FaceDetector
from core.media_probe import MediaLimits
from core.options import JobOptions
from tests.media_factory import (
    Audio,
    decode_all,
    face_image,
    pattern_frame,
    probe_output,
    talking_face_frames,
    write_garbage,
    write_image,
    write_video,
)
from worker.driving import model_inputs, scan_driving
from worker.framing import source_crop
from worker.media.images import load_image
from worker.media.settings import MediaSettings
from worker.paste import even_canvas
from worker.task import Progress, _best_frame, run_animation


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_default_job_pastes_back_with_sound(
    tmp_path: Path, animator, face_photo: Path, talking_video: Path
) -> None:
    seen: list[Progress] = []
    out = tmp_path / "result.mp4"
    result = run_animation(
        face_photo, talking_video, out, JobOptions(), animator, progress=seen.append
    )
    probed = probe_output(out)
    assert (probed.frames, probed.fps) == (10, 25.0)
    assert (probed.width, probed.height) == (300, 220)  # the photo's framing, made even
    assert (result.width, result.height, result.frames) == (300, 220, 10)
    assert probed.video_codec == "h264" and probed.pix_fmt == "yuv420p" and probed.moov_before_mdat
    assert result.has_audio and probed.audio_codec == "aac"
    assert probed.audio_seconds == pytest.approx(0.4, abs=0.05)
    stages = [p.stage for p in seen]
    assert stages[0] == "probing" and stages[-1] == "done"
    order = ["probing", "cropping", "animating", "encoding", "done"]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == order
    animating = [p.frames_done for p in seen if p.stage == "animating"]
    assert animating == sorted(animating) and animating[-1] == 10
    assert seen[-1] == Progress("done", 10, 10)
    assert _leftovers(tmp_path) == []
    # outside the face's crop the photo is untouched
    first = decode_all(out)[0]
    photo = face_image(301, 221, 150, 100, 45)[:220, :300]
    assert float(np.abs(first[:, :40].astype(float) - photo[:, :40]).mean()) < 4


def test_side_by_side_with_best_frame_auto(
    tmp_path: Path, animator, face_photo: Path, short_video: Path
) -> None:
    out = tmp_path / "sbs.mp4"
    seen: list[Progress] = []
    options = JobOptions(layout="side_by_side", best_frame="auto", audio=False)
    result = run_animation(face_photo, short_video, out, options, animator, progress=seen.append)
    assert result.reference_frame is not None and 0 <= result.reference_frame < 5
    probed = probe_output(out)
    # source 300x220 | driving 192x144 scaled to 220 rows | result 300x220
    assert probed.height == 220 and probed.width == 300 + 294 + 300
    assert probed.frames == 5 and probed.audio_codec is None
    cropping = [p for p in seen if p.stage == "cropping"]
    assert cropping[-1].frames_total == 10  # two passes over the 5 frames
    assert [p.frames_done for p in cropping] == sorted(p.frames_done for p in cropping)


def test_crop_none_with_a_frame_index(tmp_path: Path, animator, short_video: Path) -> None:
    photo = write_image(tmp_path / "aligned.png", face_image(256, 256, 128, 120, 80))
    out = tmp_path / "o.mp4"
    options = JobOptions(crop="none", best_frame=3, layout="side_by_side")
    result = run_animation(photo, short_video, out, options, animator)
    assert result.reference_frame == 3
    probed = probe_output(out)
    assert (probed.width, probed.height, probed.frames) == (768, 256, 5)
    assert probed.audio_codec == "aac"


def test_best_frame_index_is_the_reference_frame(
    tmp_path: Path, animator, face_photo: Path, short_video: Path
) -> None:
    """best_frame=i animates with relative motion measured from driving frame i."""
    out = tmp_path / "o.mp4"
    options = JobOptions(best_frame=2, paste_back=False, audio=False, seed=7)
    run_animation(face_photo, short_video, out, options, animator)
    written = decode_all(out)

    settings = MediaSettings()
    detector = FaceDetector()
    canvas = even_canvas(load_image(face_photo))
    source = source_crop(canvas, detector).cut(canvas)
    scan = scan_driving(short_video, settings, detector=detector, estimate=5, tick=lambda _: None)
    crops = list(model_inputs(short_video, scan, settings, lambda _: None))
    expected = list(animator.animate(source, iter(crops), reference=crops[2], seed=7))
    assert len(written) == len(expected) == 5
    for got, want in zip(written, expected, strict=True):
        assert float(np.abs(got.astype(float) - want.astype(float)).mean()) < 3  # H.264 loss


def test_best_frame_auto_keeps_the_best_keypoints_in_one_pass(
    animator, face_photo: Path, talking_video: Path
) -> None:
    """Batch by batch (4 frames of 10): the frame the animator picks from the whole clip,
    and its keypoints as the animation pass detects them (in their batch)."""
    settings = MediaSettings()
    detector = FaceDetector()
    canvas = even_canvas(load_image(face_photo))
    source = source_crop(canvas, detector).cut(canvas)
    scan = scan_driving(talking_video, settings, detector=detector, estimate=10, tick=lambda _: 0)
    crops = list(model_inputs(talking_video, scan, settings, lambda _: None))
    expected = animator.best_frame(source, crops)
    index, keypoints = _best_frame(
        animator, source, model_inputs(talking_video, scan, settings, lambda _: None)
    )
    streamed = list(animator.detect(iter(crops)))
    batch, row = divmod(expected, animator.batch_size)
    assert index == expected
    assert torch.equal(keypoints.value, streamed[batch].value[row : row + 1])
    assert keypoints.jacobian is not None and streamed[batch].jacobian is not None
    assert torch.equal(keypoints.jacobian, streamed[batch].jacobian[row : row + 1])


def test_a_photo_over_the_output_side_is_scaled_down_and_the_job_says_so(
    tmp_path: Path, animator, face_photo: Path, short_video: Path
) -> None:
    """face_photo is 301x221; with MCNET_MAX_OUTPUT_SIDE=280 the result is 280 wide."""
    settings = MediaSettings(limits=MediaLimits(max_output_side=280))
    out = tmp_path / "o.mp4"
    options = JobOptions(audio=False)
    result = run_animation(face_photo, short_video, out, options, animator, settings=settings)
    assert max(result.width, result.height) == 280
    assert probe_output(out).width == 280
    assert len(result.warnings) == 1
    assert "301x221" in result.warnings[0] and "MCNET_MAX_OUTPUT_SIDE" in result.warnings[0]
    default = run_animation(face_photo, short_video, out, options, animator)
    assert default.warnings == () and default.width == 300  # even, under 1920: as it is


def test_best_frame_past_the_end(
    tmp_path: Path, animator, face_photo: Path, talking_video: Path
) -> None:
    with pytest.raises(InvalidOptionsError, match="only 10 frames"):
        run_animation(
            face_photo, talking_video, tmp_path / "o.mp4", JobOptions(best_frame=10), animator
        )
    assert list(tmp_path.iterdir()) == []


def test_no_face_names_the_input(
    tmp_path: Path, animator, face_photo: Path, talking_video: Path
) -> None:
    blank = write_image(tmp_path / "blank.png", pattern_frame(0, 200, 150))
    with pytest.raises(NoFaceError) as info:
        run_animation(blank, talking_video, tmp_path / "o.mp4", JobOptions(), animator)
    assert info.value.which == "source"
    faceless = write_video(tmp_path / "faceless.mp4", lambda i: pattern_frame(i, 96, 64), count=5)
    with pytest.raises(NoFaceError) as info:
        run_animation(face_photo, faceless, tmp_path / "o.mp4", JobOptions(), animator)
    assert info.value.which == "driving"
    assert not (tmp_path / "o.mp4").exists()


def test_bad_inputs(tmp_path: Path, animator, face_photo: Path, talking_video: Path) -> None:
    garbage = write_garbage(tmp_path / "x.mp4")
    with pytest.raises(UnsupportedMediaError):
        run_animation(face_photo, garbage, tmp_path / "o.mp4", JobOptions(), animator)
    with pytest.raises(UnsupportedMediaError):
        run_animation(garbage, talking_video, tmp_path / "o.mp4", JobOptions(), animator)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InvalidInputError):
        run_animation(
            face_photo, tmp_path / "empty.mp4", tmp_path / "o.mp4", JobOptions(), animator
        )


def test_cancel_stops_and_leaves_nothing(
    tmp_path: Path, animator, face_photo: Path, talking_video: Path
) -> None:
    calls = {"n": 0}
    seen: list[Progress] = []

    def should_cancel() -> bool:
        calls["n"] += 1
        return any(p.stage == "animating" and p.frames_done >= 4 for p in seen)

    out = tmp_path / "o.mp4"
    with pytest.raises(JobCanceledError):
        run_animation(
            face_photo,
            talking_video,
            out,
            JobOptions(),
            animator,
            progress=seen.append,
            should_cancel=should_cancel,
        )
    assert not out.exists() and _leftovers(tmp_path) == []
    assert max(p.frames_done for p in seen if p.stage == "animating") < 10


def test_existing_output_is_replaced_whole(
    tmp_path: Path, animator, face_photo: Path, talking_video: Path
) -> None:
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    with pytest.raises(JobCanceledError):
        run_animation(
            face_photo, talking_video, out, JobOptions(), animator, should_cancel=lambda: True
        )
    assert out.read_bytes() == b"old"


def test_portrait_phone_video_with_sound_and_variable_rate(
    tmp_path: Path, animator, face_photo: Path
) -> None:
    upright = talking_face_frames(8, width=96, height=160, size=40)
    stored = [np.ascontiguousarray(np.rot90(f, k=1)) for f in upright]  # sensor pixels
    times = [0.0, 0.03, 0.08, 0.1, 0.17, 0.2, 0.26, 0.3]
    driving = write_video(
        tmp_path / "phone.mov",
        stored,
        kind="mov",
        rotation=-90,
        times=times,
        audio=Audio(seconds=0.4),
    )
    out = tmp_path / "o.mp4"
    result = run_animation(
        face_photo, driving, out, JobOptions(layout="side_by_side", paste_back=False), animator
    )
    probed = probe_output(out)
    assert probed.frames == 8
    assert probed.fps == pytest.approx(result.fps, rel=1e-3)
    assert 8 / 0.4 <= result.fps <= 8 / 0.3  # the average rate of the variable-rate clip
    assert probed.audio_seconds == pytest.approx(8 / result.fps, abs=0.06)
    assert (probed.width, probed.height) == (768, 256)


def test_a_video_whose_frames_stop_decoding_early_says_so(
    tmp_path: Path, animator, face_photo: Path
) -> None:
    """The probe counts 40 frames from the index, but the data of the last ones is zeros:
    the job renders what decodes and its result says the video ended early."""
    rng = np.random.default_rng(0)  # noise: every frame's data is large, so the tail is frames
    video = write_video(
        tmp_path / "tail.mp4",
        lambda _: rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
        count=40,
        faststart=True,
    )
    data = bytearray(video.read_bytes())
    cut = len(data) * 6 // 10
    data[cut:] = bytes(len(data) - cut)
    video.write_bytes(data)
    result = run_animation(
        face_photo, video, tmp_path / "out.mp4", JobOptions(crop="none"), animator
    )
    assert 5 < result.frames < 36
    assert any("ended early" in warning for warning in result.warnings), result.warnings
    assert probe_output(tmp_path / "out.mp4").frames == result.frames
