"""`mcnet animate`: options, the checkpoint rule, demo weights, errors, exit codes."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import av
import pytest

import worker.cli as cli
from core.cli import main as mcnet
from tests.media_factory import pattern_frame, probe_output, write_image, write_video


@pytest.fixture(autouse=True)
def _no_env_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCNET_CHECKPOINT", raising=False)


def test_refuses_without_a_checkpoint(
    tmp_path: Path, capsys, face_photo: Path, talking_video: Path
) -> None:
    code = cli.main([str(face_photo), str(talking_video), "-o", str(tmp_path / "o.mp4")])
    assert code == 2
    err = capsys.readouterr().err
    assert "harlanhong/ICCV2023-MCNET" in err and "mcnet convert" in err and "--demo-weights" in err
    assert not (tmp_path / "o.mp4").exists()


def test_demo_weights_animate_with_every_option(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog,
    capsys,
    face_photo: Path,
    short_video: Path,
) -> None:
    import model.checkpoint
    from model.config import MCNetConfig

    real = model.checkpoint.demo_networks
    monkeypatch.setattr(model.checkpoint, "demo_networks", lambda *a, **k: real(MCNetConfig.tiny()))
    out = tmp_path / "o.mp4"
    argv = [
        "animate",
        str(face_photo),
        str(short_video),
        "-o",
        str(out),
        "--demo-weights",
        "--motion",
        "absolute",
        "--no-adapt-scale",
        "--best-frame",
        "1",
        "--crop",
        "auto",
        "--no-paste-back",
        "--layout",
        "result",
        "--no-audio",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--batch-size",
        "3",
        "--crf",
        "23",
    ]
    with caplog.at_level(logging.WARNING):
        assert mcnet(argv) == 0
    assert "NOT a trained model" in caplog.text
    captured = capsys.readouterr()
    assert "animating" in captured.err and "5/5" in captured.err  # the progress bar
    assert "done" not in captured.err  # no bar for the finished stage
    assert "probing" not in captured.err  # nor for a stage that counts no frames
    cropping = [part for part in re.split(r"[\r\n]", captured.err) if part.startswith("cropping")]
    assert cropping and "5/5" in cropping[-1], cropping  # the bar of an ended stage is full
    last = captured.out.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"wrote {re.escape(str(out))}: \d+\.\d s of video, \d+\.\d kB \(demo weights: .*\)", last
    ), last
    with av.open(str(out)) as container:
        assert "untrained demo weights" in container.metadata["comment"]
    probed = probe_output(out)
    assert (probed.frames, probed.width, probed.height, probed.audio_codec) == (5, 256, 256, None)


def test_options_are_parsed_into_job_options() -> None:
    args = cli.build_parser().parse_args(["a.jpg", "b.mp4", "-o", "o.mp4", "--best-frame", "auto"])
    options = cli._options(args)
    assert options.best_frame == "auto" and options.crop == "auto" and options.audio is True
    args = cli.build_parser().parse_args(["a", "b", "-o", "o", "--crop", "none", "--audio"])
    assert cli._options(args).effective_paste_back is False


@pytest.mark.parametrize(
    "extra",
    [
        ["--best-frame", "-1"],
        ["--best-frame", "soon"],
        ["--crop", "none", "--paste-back"],
        ["--crf", "99"],
    ],
)
def test_bad_options_exit_2(tmp_path: Path, extra: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["a.jpg", "b.mp4", "-o", str(tmp_path / "o.mp4"), "--demo-weights", *extra])
    assert info.value.code == 2


def test_inputs_are_checked_before_the_model_loads_in_the_commands_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, face_photo: Path, short_video: Path
) -> None:
    import worker.model_loading

    def no_model(*_: object) -> None:
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(worker.model_loading, "load_animator", no_model)
    out = ["-o", str(tmp_path / "o.mp4"), "--demo-weights", "--no-progress"]
    blank = write_image(tmp_path / "blank.png", pattern_frame(0, 64, 64))
    noise = write_video(tmp_path / "noise.mp4", [pattern_frame(i, 64, 64) for i in range(3)])
    for argv, words in (
        (["nope.jpg", str(face_photo)], "nope.jpg: no such file"),
        ([str(blank), str(face_photo)], "is a photo, not a video"),
        ([str(face_photo), str(noise)], "No face was found in the driving video"),
        ([str(face_photo), str(short_video), "--best-frame", "9"], "--best-frame 9 is past"),
    ):
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert cli.main([*argv, *out]) == 1
        assert words in caplog.text, caplog.text
        assert "pass --crop none" in caplog.text or "No face" not in caplog.text
        assert "crop=none" not in caplog.text and "best_frame" not in caplog.text


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("missing/dir/out.mp4", "does not exist"),
        ("out.mov", "ending in .mp4"),
        ("folder.mp4", "is a folder"),
    ],
)
def test_the_output_path_is_checked_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog, face_photo: Path, short_video: Path,
    output: str, words: str,
) -> None:  # fmt: skip
    import worker.model_loading

    def no_model(*_: object) -> None:
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(worker.model_loading, "load_animator", no_model)
    (tmp_path / "folder.mp4").mkdir()
    target = tmp_path / output
    with caplog.at_level(logging.ERROR):
        assert (
            cli.main([str(face_photo), str(short_video), "-o", str(target), "--demo-weights"]) == 1
        )
    assert words in caplog.text and str(target) in caplog.text


def test_help(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--motion",
        "--adapt-scale",
        "--best-frame",
        "--crop",
        "--paste-back",
        "--layout",
        "--audio",
        "--seed",
        "--checkpoint",
        "--device",
        "--precision",
        "--batch-size",
        "--demo-weights",
    ):
        assert option in text


def test_messages_name_flags_not_api_fields_and_leave_plain_words() -> None:
    """Option names as the API writes them become this command's flags; the same words
    used as ordinary words ("motion", "audio") stay as they are."""
    error = ValueError("Invalid options: best_frame=7 is past the video's end; send crop=none")
    assert cli.in_cli_words(error) == "--best-frame 7 is past the video's end; pass --crop none"
    plain = ValueError("the motion of the audio track and its layout")
    assert cli.in_cli_words(plain) == "the motion of the audio track and its layout"
