"""The worker's settings reach the animator and the media pipeline; its work folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import WorkerSettings
from worker.rq_task import JOB_FOLDER_PREFIX
from worker.worker_main import build_parser, media_settings, prepare_work_dir, settings_from_args


def test_media_settings_carry_limits_and_encoding() -> None:
    settings = WorkerSettings(encode_preset="veryfast", encode_crf=22, max_video_frames=77)
    media = media_settings(settings)
    assert (media.encode.encode_preset, media.encode.encode_crf) == ("veryfast", 22)
    assert media.limits.max_video_frames == 77


def test_command_line_overrides_only_what_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PRECISION": "fp16", "COMPILE": "false", "BATCH_SIZE": "4"}.items():
        monkeypatch.setenv(f"MCNET_{name}", value)
    plain = settings_from_args(build_parser().parse_args([]))
    assert (plain.precision, plain.compile, plain.batch_size) == ("fp16", False, 4)
    given = settings_from_args(build_parser().parse_args(["--compile", "--batch-size", "8"]))
    assert (given.precision, given.compile, given.batch_size) == ("fp16", True, 8)


def test_work_dir_is_created_or_refused(tmp_path: Path) -> None:
    made = tmp_path / "a" / "b"
    prepare_work_dir(made)
    assert made.is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="cannot be created"):
        prepare_work_dir(blocker / "work")


def test_job_folders_of_dead_workers_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f"{JOB_FOLDER_PREFIX}{dead.pid}-x1"
    live = tmp_path / f"{JOB_FOLDER_PREFIX}{os.getppid()}-x2"  # a process that is running
    other = tmp_path / "mcnet-something-else"
    for folder in (orphan, live, other):
        folder.mkdir()
        (folder / "result.mp4").write_bytes(b"partial")
    prepare_work_dir(tmp_path)
    assert not orphan.exists() and live.exists() and other.exists()
