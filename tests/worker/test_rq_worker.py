"""The worker's settings reach the animator and the media pipeline."""

from __future__ import annotations

from core.settings import WorkerSettings
from worker.rq_worker import _parser, media_settings, settings_from_args


def test_media_settings_carry_limits_and_encoding() -> None:
    settings = WorkerSettings(encode_preset="veryfast", encode_crf=22, max_video_frames=77)
    media = media_settings(settings)
    assert (media.encode.encode_preset, media.encode.encode_crf) == ("veryfast", 22)
    assert media.limits.max_video_frames == 77


def test_command_line_overrides_only_what_it_names() -> None:
    base = WorkerSettings(precision="fp16", compile=False, batch_size=4)
    plain = settings_from_args(_parser().parse_args([]), base)
    assert (plain.precision, plain.compile, plain.batch_size) == ("fp16", False, 4)
    given = settings_from_args(_parser().parse_args(["--compile", "--batch-size", "8"]), base)
    assert (given.precision, given.compile, given.batch_size) == ("fp16", True, 8)
