"""A template's sound: the driving video's packets copied into a file of their own."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from tests.media_factory import Audio, pattern_frame, write_video
from worker.media.audio import copy_sound


def _packets(path: Path) -> tuple[str, list[tuple[int | None, int | None, bytes]]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [(p.pts, p.duration, bytes(p)) for p in container.demux(stream) if p.size]
        return stream.codec.canonical_name, packets


@pytest.mark.parametrize(
    ("kind", "codec", "muxer"),
    [("mp4", "aac", "mp4"), ("mov", "pcm_s16le", "mp4"), ("webm", "opus", "matroska"),
     ("avi", "mp3", "matroska")],
)  # fmt: skip
def test_the_packets_are_copied_not_reencoded(
    tmp_path: Path, kind: str, codec: str, muxer: str
) -> None:
    video = write_video(
        tmp_path / f"v.{kind}", lambda i: pattern_frame(i, 64, 48), count=8, kind=kind,
        audio=Audio(),
    )  # fmt: skip
    copied = copy_sound(video)
    assert copied is not None
    data, found_codec, found_muxer = copied
    assert (found_codec, found_muxer) == (codec, muxer)
    sound = tmp_path / "sound"
    sound.write_bytes(data)
    original_codec, original = _packets(video)
    copy_codec, copy = _packets(sound)
    assert copy_codec == original_codec == codec
    assert [p[2] for p in copy] == [p[2] for p in original]  # the same bytes, packet by packet
    if kind in ("mp4", "mov", "webm"):  # the same container family: the same timestamps too
        assert copy == original


def test_a_video_without_sound_has_none(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.mp4", lambda i: pattern_frame(i, 64, 48), count=4)
    assert copy_sound(video) is None
