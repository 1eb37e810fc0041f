"""Fixtures of the media pipeline's tests: the tiny model and small media made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media_factory import Audio, face_image, talking_face_frames, write_image, write_video


@pytest.fixture(scope="session")
def animator():
    """The real Animator over deterministic untrained tiny networks (fast on a CPU)."""
    from model.animator import Animator
    from model.checkpoint import demo_networks
    from model.config import MCNetConfig

    return Animator(demo_networks(MCNetConfig.tiny()), device="cpu", batch_size=4)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for media shared by the session's tests."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def face_photo(media: Path) -> Path:
    """A 301x221 JPEG photo with a face centred at (150, 100)."""
    return write_image(media / "face.jpg", face_image(301, 221, 150, 100, 45), fmt="JPEG")


@pytest.fixture(scope="session")
def talking_video(media: Path) -> Path:
    """10 frames (0.4 s at 25 fps) of a talking face, 192x144 MP4 with 0.4 s of AAC sound."""
    return write_video(media / "talk.mp4", talking_face_frames(10), audio=Audio())


@pytest.fixture(scope="session")
def short_video(media: Path) -> Path:
    """5 frames (0.2 s at 25 fps) of a talking face, 192x144 MP4 with AAC sound."""
    return write_video(media / "short.mp4", talking_face_frames(5), audio=Audio())
