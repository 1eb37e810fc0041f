"""What some tests need from outside the repository: the conformance fixture, a Docker
engine, promtool.

Outside CI a test whose prerequisite is missing is skipped with one line (`pytest -ra`)
saying what is missing and how to get it: tests that reach it through a fixture are marked
at collection (`skip_unless`), so their skips fold into one line per file; a test that
checks in its body calls `missing` from one place, so they fold too. In CI (the `CI`
environment variable set, as CI services and `.ci/run` do) a missing prerequisite is an
error, never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Generator
from pathlib import Path
from typing import NoReturn

import pytest

FALSE_WORDS = ("", "0", "false", "no")
MISSING = pytest.StashKey[str]()  # on a test skipped by skip_unless: what is missing


def in_ci() -> bool:
    """Whether the tests run in CI (`CI` set to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in FALSE_WORDS


def missing(reason: str) -> NoReturn:
    """Skip the test (outside CI) or fail it (in CI): `reason` says what is missing and how
    to get it, on one line."""
    if in_ci():
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def promtool_missing() -> str | None:
    """Why promtool cannot run here, or None when it can."""
    if shutil.which("promtool") is None:
        return "promtool is not installed: apt-get install prometheus"
    return None


def require_promtool() -> None:
    """Skip or fail (see `missing`) without promtool."""
    reason = promtool_missing()
    if reason is not None:
        missing(reason)


def skip_unless(
    items: list[pytest.Item], folder: Path, fixture: str, reason: Callable[[], str | None]
) -> None:
    """For a conftest's `pytest_collection_modifyitems`: outside CI, mark each collected
    test under `folder` that uses `fixture` to be skipped when `reason()` (asked once, and
    only if there is such a test) says what is missing; `-ra` shows one line per file. In
    CI nothing is marked and the fixture's own `missing` call fails the tests."""
    if in_ci():
        return
    chosen = [
        item
        for item in items
        if folder in Path(item.path).parents and fixture in getattr(item, "fixturenames", ())
    ]
    why = reason() if chosen else None
    if why is None:
        return
    for item in chosen:
        item.add_marker(pytest.mark.skip(reason=why))
        item.stash[MISSING] = why


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test skipped by `skip_unless` is reported at its file, not its line, so that
    `-ra` folds a file's skips for one missing prerequisite into one line (pytest folds
    marked skips by line when a test is parametrized). Registered by tests/conftest.py."""
    report = yield
    why = item.stash.get(MISSING, None)
    if why is not None and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (report.longrepr[0], None, report.longrepr[2])
    return report
