"""A missing prerequisite skips its tests with one line outside CI and fails them in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prerequisites import in_ci, missing

ROOT = Path(__file__).resolve().parents[1]

TWO_TESTS = """
from tests.prerequisites import missing


def test_one():
    missing("no widget here: apt-get install widget")


def test_two():
    missing("no widget here: apt-get install widget")
"""


@pytest.mark.parametrize(
    ("value", "ci"),
    [("", False), ("0", False), ("false", False), ("No", False), ("true", True), ("1", True)],
)
def test_ci_is_read_from_the_environment(
    value: str, ci: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_outside_ci_a_missing_prerequisite_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install widget"):
        missing("no widget here: apt-get install widget")


def test_in_ci_a_missing_prerequisite_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI: no widget here"):
        missing("no widget here: apt-get install widget")


def _run_two_tests(folder: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (folder / "test_two.py").write_text(TWO_TESTS)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, "--rootdir", str(folder), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=folder,
    )


def test_the_skipped_tests_of_one_prerequisite_are_reported_on_one_line(tmp_path: Path) -> None:
    done = _run_two_tests(tmp_path, ci=None)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "no widget here" in line]
    assert len(lines) == 1 and lines[0].startswith("SKIPPED [2] "), done.stdout
    assert "2 skipped" in done.stdout


def test_the_same_tests_fail_in_ci(tmp_path: Path) -> None:
    done = _run_two_tests(tmp_path, ci="true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 failed" in done.stdout and "required in CI: no widget here" in done.stdout
