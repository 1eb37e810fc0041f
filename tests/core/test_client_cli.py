"""`mcnet submit` before any upload: the output path, the inputs, an unreachable service."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.client_cli import main


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
