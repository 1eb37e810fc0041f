"""Logging of every `mcnet` command, set up in one place."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_level() -> str:
    """The level MCNET_LOG_LEVEL names, INFO when unset (or empty)."""
    return (os.environ.get("MCNET_LOG_LEVEL") or "INFO").upper()


def configure_logging(level: str | None = None) -> None:
    """Log lines with time, level and logger name, at `level` (default: log_level())."""
    logging.basicConfig(level=level or log_level(), format=FORMAT)
