"""`mcnet template extract` and `mcnet animate PHOTO TEMPLATE`: the offline template path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from core.cli import main as mcnet
from core.template_format import read_template
from tests.media_factory import decode_all


@pytest.fixture(autouse=True)
def _tiny_demo_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCNET_CHECKPOINT", raising=False)
    monkeypatch.setenv("MCNET_MODEL_CONFIG", "tiny")
    monkeypatch.setenv("MCNET_BATCH_SIZE", "4")


def test_extract_then_animate_gives_the_video_result(
    tmp_path: Path, capsys, face_photo: Path, short_video: Path
) -> None:
    template = tmp_path / "motion.mcnet"
    code = mcnet(
        ["template", "extract", str(short_video), "-o", str(template), "--demo-weights",
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    assert (
        f"wrote {template}: 5 frames (0.2 s at 25.000 fps, with sound)" in capsys.readouterr().out
    )
    assert read_template(template).header.model == "demo"
    outputs = {}
    for name, driving in (("video", short_video), ("template", template)):
        outputs[name] = tmp_path / f"{name}.mp4"
        argv = ["animate", str(face_photo), str(driving), "-o", str(outputs[name])]
        assert mcnet([*argv, "--demo-weights", "--seed", "3", "--no-progress"]) == 0
    video, from_template = decode_all(outputs["video"]), decode_all(outputs["template"])
    assert len(video) == len(from_template) == 5
    for a, b in zip(video, from_template, strict=True):
        np.testing.assert_array_equal(a, b)


def test_extract_refuses_a_wrong_output_name_and_says_side_by_side_needs_the_video(
    tmp_path: Path, caplog, capsys, face_photo: Path, short_video: Path
) -> None:
    caplog.set_level(logging.ERROR)
    bad = ["template", "extract", str(short_video), "-o", str(tmp_path / "m.npz"), "--demo-weights"]
    assert mcnet(bad) == 1
    assert "ends in .mcnet" in caplog.text
    damaged = tmp_path / "damaged.mcnet"
    damaged.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    argv = ["animate", str(face_photo), str(damaged), "-o", str(tmp_path / "o.mp4")]
    assert mcnet([*argv, "--demo-weights", "--no-progress"]) == 1
    lines = [r.getMessage() for r in caplog.records if "damaged.mcnet" in r.getMessage()]
    assert len(lines) == 1 and "not a readable MCNet motion template" in lines[0]
    assert "\n" not in lines[0] and not (tmp_path / "o.mp4").exists()
