"""`mcnet convert`: a missing folder in one line; a result other users can read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from model.checkpoint import load_networks, save_safetensors
from model.cli import main
from model.networks import MCNet


def test_convert_writes_a_file_others_can_read(tiny_networks: MCNet, tmp_path: Path) -> None:
    source = tmp_path / "in.safetensors"
    save_safetensors(tiny_networks, source)
    output = tmp_path / "out.safetensors"
    previous = os.umask(0o022)
    try:
        assert main([str(source), str(output), "--config", "tiny"]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(output.stat().st_mode) == 0o644  # the container's user reads it
    assert load_networks(output, tiny_networks.config).config == tiny_networks.config


def test_convert_into_a_missing_folder_says_so_in_one_line(tmp_path: Path, capsys) -> None:
    target = tmp_path / "nowhere" / "out.safetensors"
    assert main([str(tmp_path / "in.pth.tar"), str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and "Traceback" not in err[0]
