"""Giving freed memory back to the operating system (glibc's malloc arenas).

A large picture decoded and freed leaves its pages in glibc's heaps, one arena per thread
that allocated them, so the process's resident memory stays at its peak. `malloc_trim(0)`
returns the free pages of every arena, and `limit_arenas` lets a few arenas serve every
thread (as MALLOC_ARENA_MAX does). No-ops where the C library has neither (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

logger = logging.getLogger(__name__)


M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _load_trim() -> Callable[[int], int] | None:
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def limit_arenas(count: int = 2) -> None:
    """At most `count` malloc arenas for all threads, unless MALLOC_ARENA_MAX says
    otherwise: a server's threads each keeping freed memory in an arena of their own add
    up to far more than what is in use. Call at start, before the threads."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None or os.environ.get("MALLOC_ARENA_MAX"):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if not mallopt(M_ARENA_MAX, count):
        logger.debug("mallopt(M_ARENA_MAX) refused")


def release_free_memory() -> None:
    """Return the C heap's free pages to the system (glibc), so RSS falls after a peak."""
    if _TRIM is not None:
        _TRIM(0)
