"""Whether the file store can be written, as submits ask it: a cached storage check.

A job accepted while the store is read-only or full would render fully and then fail to
store its result, so POST /animate answers 503 instead. The check writes and removes a
small object in each folder (or prefix) the service writes to. A writable store is
believed for `ttl` seconds, so a burst of submits costs one check; an unwritable one is
checked again at each submit, so the service takes jobs again as soon as it can.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from core.storage import Storage, StorageError, check_writable

logger = logging.getLogger(__name__)


class StoreHealth:
    """The store's writability, checked at most once per `ttl` seconds."""

    def __init__(self, storage: Storage, spool_dir: Path | None, ttl: float = 1.0) -> None:
        self.storage = storage
        self.spool_dir = spool_dir
        self.ttl = ttl
        self._lock = threading.Lock()
        self._ok_at: float | None = None  # when the store was last found writable

    def problem(self) -> str | None:
        """None when the store (and the spool folder) can be written; else why not."""
        with self._lock:
            fresh = self._ok_at is not None and time.monotonic() - self._ok_at < self.ttl
            if fresh:
                return None
            problem = self._check()
            self._ok_at = time.monotonic() if problem is None else None
            return problem

    def _check(self) -> str | None:
        try:
            self.storage.check()
            if self.spool_dir is not None:
                check_writable(self.spool_dir)
        except StorageError as exc:
            logger.warning("storage not writable: %s", exc)
            return str(exc)
        return None
