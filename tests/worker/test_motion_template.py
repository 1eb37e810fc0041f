"""Motion templates: extraction, and jobs from a template giving the video job's pixels."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from core.errors import InvalidOptionsError
from core.options import JobOptions
from core.template_format import TemplateError, is_template, read_template, write_template
from tests.media_factory import decode_all, probe_output
from worker.motion_template import extract_template
from worker.task import run_animation


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, animator, talking_video: Path) -> Path:
    """The motion template of the talking video (crop=auto), made once."""
    out = tmp_path_factory.mktemp("templates") / "talk.mcnet"
    extract_template(talking_video, out, animator, model="demo")
    return out


def _sound_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(p.pts, bytes(p)) for p in container.demux(stream) if p.size]


def test_extract_keeps_motion_timing_and_sound_not_pixels(
    template: Path, talking_video: Path
) -> None:
    assert is_template(template) and not is_template(talking_video)
    loaded = read_template(template)
    header = loaded.header
    assert (header.frames, header.num_kp, header.fps) == (10, 10, (25, 1))
    assert loaded.keypoints.shape == (10, 10, 2) and loaded.keypoints.dtype == np.float32
    assert loaded.jacobians is not None and loaded.jacobians.shape == (10, 10, 2, 2)
    np.testing.assert_allclose(loaded.timestamps, np.arange(10) / 25)
    assert header.framing.crop == "auto" and header.framing.box is not None
    assert (header.framing.width, header.framing.height) == (192, 144)
    assert header.model == "demo" and header.audio is not None
    assert header.audio.codec == "aac"
    # the sound is the video's packets, copied: same bytes, same timestamps
    copy = template.with_suffix(".sound")
    assert loaded.audio is not None
    copy.write_bytes(loaded.audio)
    assert _sound_packets(copy) == _sound_packets(talking_video)
    # no pixels: the whole file is smaller than one raw 256x256 crop
    assert template.stat().st_size < 256 * 256 * 3


CASES = {
    "relative, adapt_scale": JobOptions(),
    "relative, no adapt_scale": JobOptions(adapt_scale=False),
    "absolute": JobOptions(motion="absolute"),
    "best_frame=auto": JobOptions(best_frame="auto"),
    "best_frame=3, no paste-back": JobOptions(best_frame=3, paste_back=False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_job_from_template_gives_the_video_jobs_frames(
    name: str, tmp_path: Path, animator, face_photo: Path, talking_video: Path, template: Path
) -> None:
    options = CASES[name].model_copy(update={"seed": 7})
    from_video = run_animation(face_photo, talking_video, tmp_path / "v.mp4", options, animator)
    from_template = run_animation(face_photo, template, tmp_path / "t.mp4", options, animator)
    assert from_template.reference_frame == from_video.reference_frame
    assert (from_template.frames, from_template.fps) == (from_video.frames, from_video.fps)
    assert (from_template.width, from_template.height) == (from_video.width, from_video.height)
    video_frames, template_frames = decode_all(tmp_path / "v.mp4"), decode_all(tmp_path / "t.mp4")
    assert len(video_frames) == len(template_frames) == 10
    for a, b in zip(video_frames, template_frames, strict=True):
        np.testing.assert_array_equal(a, b)
    assert from_template.has_audio and probe_output(tmp_path / "t.mp4").audio_codec == "aac"
    assert _sound_packets(tmp_path / "t.mp4") == _sound_packets(tmp_path / "v.mp4")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_side_by_side_needs_the_video(
    tmp_path: Path, animator, face_photo: Path, template: Path
) -> None:
    with pytest.raises(InvalidOptionsError, match="side_by_side"):
        run_animation(
            face_photo, template, tmp_path / "o.mp4", JobOptions(layout="side_by_side"), animator
        )


def test_a_template_of_another_model_is_refused(
    tmp_path: Path, animator, face_photo: Path, template: Path
) -> None:
    loaded = read_template(template)
    other = tmp_path / "other.mcnet"
    header = loaded.header.model_copy(update={"model": "other.safetensors sha256:0123456789ab"})
    write_template(other, type(loaded)(header, loaded.keypoints, loaded.jacobians,
                                       loaded.timestamps, loaded.audio))  # fmt: skip
    with pytest.raises(TemplateError, match="other.safetensors"):
        run_animation(face_photo, other, tmp_path / "o.mp4", JobOptions(), animator, model="demo")
