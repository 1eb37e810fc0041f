"""`mcnet submit` and `mcnet template` before any upload: the output path, the inputs, an
unreachable service, a machine without torch."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.client_cli import main
from tests.service.helpers import ROOT


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[str, str]:
    source, driving = tmp_path / "photo.jpg", tmp_path / "talk.mp4"
    source.write_bytes(b"not read before the upload")
    driving.write_bytes(b"not read before the upload")
    return str(source), str(driving)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nobody listens once it is closed


@pytest.mark.parametrize(
    ("output", "words"),
    [("missing/out.mp4", "does not exist"), ("out.mov", "ending in .mp4")],
)
def test_the_output_path_is_checked_before_submitting(
    tmp_path: Path, inputs: tuple[str, str], capsys, output: str, words: str
) -> None:
    server = f"http://127.0.0.1:{_closed_port()}"  # a submit would fail differently
    code = main([*inputs, "--server", server, "-o", str(tmp_path / output)])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "no service answers" not in err, err


def test_a_missing_input_is_named(tmp_path: Path, inputs: tuple[str, str], capsys) -> None:
    code = main([inputs[0], str(tmp_path / "gone.mp4"), "-o", str(tmp_path / "o.mp4")])
    assert code == 2 and "gone.mp4: no such file" in capsys.readouterr().err


def test_a_refused_connection_names_the_url_and_how_to_change_it(
    tmp_path: Path, inputs: tuple[str, str], capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MCNET_SERVER", server)
    code = main([*inputs, "-o", str(tmp_path / "o.mp4"), "--quiet"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert f"no service answers at {server}" in lines[0]
    assert "--server" in lines[0] and "MCNET_SERVER" in lines[0] and "mcnet serve" in lines[0]


def test_submit_wants_a_driving_video_or_a_template_not_both(
    tmp_path: Path, inputs: tuple[str, str], capsys
) -> None:
    output = ["-o", str(tmp_path / "o.mp4")]
    assert main([*inputs, "--template", "t-1", *output]) == 2
    assert capsys.readouterr().err == (
        "mcnet submit: give a driving video or --template ID, not both\n"
    )
    assert main([inputs[0], *output]) == 2
    err = capsys.readouterr().err
    assert "--template ID" in err and "mcnet template create VIDEO" in err, err


def _without_torch(*argv: str) -> subprocess.CompletedProcess[str]:
    """`mcnet ARGV` in a Python where `import torch` fails, as on a machine without it."""
    code = (
        "import sys; sys.modules['torch'] = None; from core.cli import main; "
        f"sys.exit(main({list(argv)!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_the_service_template_commands_need_no_torch(tmp_path: Path) -> None:
    server = f"http://127.0.0.1:{_closed_port()}"
    for command in (["list"], ["delete", "t-1"]):
        done = _without_torch("template", *command, "--server", server)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(
            f"mcnet template {command[0]}: no service answers at {server}"
        )
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"not read before the upload")
    done = _without_torch("template", "create", str(video), "--server", server)
    assert done.returncode == 2 and "mcnet template create: no service answers" in done.stderr
    done = _without_torch("template", "create", str(tmp_path / "gone.mp4"), "--server", server)
    assert (done.returncode, done.stderr) == (
        2, f"mcnet template create: {tmp_path / 'gone.mp4'}: no such file\n"
    )  # fmt: skip


def test_extract_without_torch_says_what_to_install_or_use_instead(tmp_path: Path) -> None:
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"the model is loaded before the video is read")
    output = str(tmp_path / "m.mcnet")
    done = _without_torch("template", "extract", str(video), "-o", output, "--demo-weights")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "needs the worker's packages" in lines[0] and "torch" in lines[0]
    assert "mcnet template create VIDEO" in lines[0]
