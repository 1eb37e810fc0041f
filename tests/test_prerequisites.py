"""A missing prerequisite skips its tests with one line outside CI and fails them in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prerequisites import in_ci, missing

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
from pathlib import Path

import pytest

from tests.prerequisites import missing, pytest_runtest_makereport, skip_unless

WHY = "no widget here: apt-get install widget"


def pytest_collection_modifyitems(config, items):
    skip_unless(items, Path(__file__).parent, "widget", lambda: WHY)


@pytest.fixture
def widget():
    missing(WHY)
"""

TESTS = """
import pytest


def test_one(widget):
    pass


@pytest.mark.parametrize("n", [1, 2])
def test_two(widget, n):
    pass


def test_three():
    from tests.prerequisites import missing

    missing("no gadget here: apt-get install gadget")


def test_four():
    from tests.prerequisites import missing

    missing("no gadget here: apt-get install gadget")


def test_without_needs():
    pass
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


def _run(folder: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    """Six tests: three through a fixture, two checking in their body, one needing nothing."""
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_five.py").write_text(TESTS)
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
    done = _run(tmp_path, ci=None)
    assert done.returncode == 0, done.stdout + done.stderr
    for what, count in (("no widget here", 3), ("no gadget here", 2)):
        lines = [line for line in done.stdout.splitlines() if what in line]
        assert len(lines) == 1 and lines[0].startswith(f"SKIPPED [{count}] "), done.stdout
    assert "1 passed, 5 skipped" in done.stdout


def test_the_same_tests_fail_in_ci(tmp_path: Path) -> None:
    done = _run(tmp_path, ci="true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 failed, 1 passed, 3 errors" in done.stdout, done.stdout
    assert "required in CI: no widget here" in done.stdout
    assert "required in CI: no gadget here" in done.stdout
