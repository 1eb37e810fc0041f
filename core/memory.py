"""Giving freed memory back to the operating system (glibc's malloc arenas).

A large picture decoded and freed leaves its pages in glibc's heaps, one arena per thread
that allocated them, so the process's resident memory stays at its peak. `malloc_trim(0)`
returns the free pages of every arena. A no-op where the C library has no malloc_trim
(musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_free_memory() -> None:
    """Return the C heap's free pages to the system (glibc), so RSS falls after a peak."""
    if _TRIM is not None:
        _TRIM(0)
