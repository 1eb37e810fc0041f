"""MP4 writing: H.264 yuv420p, faststart, rate, quality, the driving sound copied or AAC."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from core.encoding import EncodeSettings
from tests.media_factory import Audio, pattern_frame, probe_output, write_video
from worker.media.encode import Mp4Writer


def _write(path: Path, count: int, fps: Fraction = Fraction(25), **kwargs: object) -> Path:
    with Mp4Writer(path, 64, 48, fps, **kwargs) as writer:  # type: ignore[arg-type]
        for i in range(count):
            writer.write(pattern_frame(i, 64, 48))
    return path


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001), Fraction(12)])
def test_h264_yuv420p_faststart_at_the_rate(tmp_path: Path, fps: Fraction) -> None:
    out = probe_output(_write(tmp_path / "o.mp4", 15, fps))
    assert (out.frames, out.width, out.height) == (15, 64, 48)
    assert out.video_codec == "h264" and out.pix_fmt == "yuv420p"
    assert out.fps == pytest.approx(float(fps), rel=1e-3)
    assert out.moov_before_mdat
    assert out.audio_codec is None


def test_odd_sizes_and_wrong_frames_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        Mp4Writer(tmp_path / "o.mp4", 65, 48, Fraction(25))
    with Mp4Writer(tmp_path / "o.mp4", 64, 48, Fraction(25)) as writer:
        with pytest.raises(ValueError):
            writer.write(np.zeros((48, 66, 3), np.uint8))
        writer.write(np.zeros((48, 64, 3), np.uint8))


def test_crf_sets_the_quality(tmp_path: Path) -> None:
    noisy = np.random.default_rng(0).integers(0, 256, (10, 48, 64, 3), np.uint8)
    sizes = []
    for crf in (10, 40):
        path = tmp_path / f"q{crf}.mp4"
        with Mp4Writer(
            path, 64, 48, Fraction(25), settings=EncodeSettings(encode_crf=crf)
        ) as writer:
            for frame in noisy:
                writer.write(frame)
        sizes.append(path.stat().st_size)
    assert sizes[0] > 2 * sizes[1]


@pytest.mark.parametrize(
    ("kind", "codec", "copied"),
    [
        ("mp4", "aac", "aac"),  # copied
        ("avi", "libmp3lame", "mp3"),  # copied
        ("mov", "pcm_s16le", "aac"),  # transcoded
        ("webm", "libopus", "aac"),  # transcoded
        ("mkv", "libopus", "aac"),
    ],
)
def test_sound_is_copied_or_transcoded_and_cut_to_the_video(
    tmp_path: Path, kind: str, codec: str, copied: str
) -> None:
    driving = write_video(
        tmp_path / f"d.{kind}",
        lambda i: pattern_frame(i, 64, 48),
        count=50,
        kind=kind,
        audio=Audio(seconds=2.0, codec=codec, rate=44_100 if codec == "pcm_s16le" else 48_000),
    )
    out = probe_output(_write(tmp_path / "o.mp4", 30, audio_from=driving))  # 1.2 s of video
    assert out.audio_codec == copied
    assert out.audio_seconds is not None
    assert abs(out.audio_seconds - 1.2) < 0.06, out.audio_seconds  # one AAC/MP3 frame


def test_shorter_sound_stays_shorter(tmp_path: Path) -> None:
    driving = write_video(
        tmp_path / "d.mov",
        lambda i: pattern_frame(i, 64, 48),
        count=25,
        kind="mov",
        audio=Audio(seconds=0.5),
    )
    out = probe_output(_write(tmp_path / "o.mp4", 25, audio_from=driving))
    assert out.audio_seconds is not None and abs(out.audio_seconds - 0.5) < 0.05


def test_driving_without_sound_gives_none(tmp_path: Path) -> None:
    driving = write_video(tmp_path / "d.mp4", lambda i: pattern_frame(i, 64, 48), count=5)
    with Mp4Writer(tmp_path / "o.mp4", 64, 48, Fraction(25), audio_from=driving) as writer:
        assert not writer.has_audio
        writer.write(pattern_frame(0, 64, 48))
    assert probe_output(tmp_path / "o.mp4").audio_codec is None


def test_mono_sound(tmp_path: Path) -> None:
    driving = write_video(
        tmp_path / "d.webm",
        lambda i: pattern_frame(i, 64, 48),
        count=25,
        kind="webm",
        audio=Audio(channels=1),
    )
    out = probe_output(_write(tmp_path / "o.mp4", 25, audio_from=driving))
    assert out.audio_codec == "aac" and abs((out.audio_seconds or 0) - 1.0) < 0.05


@pytest.mark.parametrize(("kind", "codec"), [("mp4", "aac"), ("mov", "pcm_s16le")])
def test_sound_is_aligned_to_a_late_first_frame(tmp_path: Path, kind: str, codec: str) -> None:
    """A clip whose picture starts 0.5 s into its sound keeps the sound from 0.5 s on."""
    times = [0.5 + i / 25 for i in range(25)]
    driving = write_video(
        tmp_path / f"late.{kind}",
        lambda i: pattern_frame(i, 64, 48),
        count=25,
        kind=kind,
        times=times,
        audio=Audio(seconds=2.0, codec=codec),
    )
    out = probe_output(_write(tmp_path / "o.mp4", 25, audio_from=driving, audio_start=0.5))
    assert out.audio_seconds is not None and abs(out.audio_seconds - 1.0) < 0.06
