"""What some tests need from outside the repository: the conformance fixture, a Docker
engine, promtool.

Outside CI a test whose prerequisite is missing is skipped, and every such test is skipped
from the one line below with the same reason, so `pytest -ra` prints one line per
prerequisite: what is missing and how to get it. In CI (the `CI` environment variable set,
as CI services and `.ci/run` do) a missing prerequisite is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

FALSE_WORDS = ("", "0", "false", "no")


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
