"""Whether the file store (and the spool folder) can be written: the one check behind the
submit's 503, `/readyz` and `mcnet_storage_up`.

The check writes and removes a small object in each folder (or prefix) the service writes
to. Against an unreachable S3 endpoint it can take as long as the client's connect
timeouts and retries, so it runs in a thread of its own and a caller waits at most
`budget` seconds: a slow store is reported as not answering at once. Callers that come
while a check is in progress share it instead of starting another. Submits may believe a
store found writable in the last `ttl` seconds (a burst of submits costs one check);
`/readyz` and the metric always ask anew, so they change as soon as the store does.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from core.storage import Storage, StorageError, check_writable

logger = logging.getLogger(__name__)


class StoreHealth:
    """The store's writability, bounded in time, shared while a check runs."""

    def __init__(
        self, storage: Storage, spool_dir: Path | None, budget: float = 1.5, ttl: float = 1.0
    ) -> None:
        self.storage = storage
        self.spool_dir = spool_dir
        self.budget = budget
        self.ttl = ttl
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-health")
        self._lock = threading.Lock()
        self._pending: Future[None] | None = None
        self._ok_at: float | None = None  # when the store was last found writable

    def problem(self, *, cached: bool = False) -> str | None:
        """None when the store can be written; else why not (logged as a warning). With
        `cached`, a store found writable in the last `ttl` seconds is believed."""
        ok_at = self._ok_at
        if cached and ok_at is not None and time.monotonic() - ok_at < self.ttl:
            return None
        try:
            self._bounded_check()
        except (StorageError, OSError) as exc:
            self._ok_at = None
            logger.warning("storage not writable: %s", exc)  # the path stays in the log
            return str(exc)
        self._ok_at = time.monotonic()
        return None

    def usable(self) -> bool:
        """Whether the store can be written now (`mcnet_storage_up`)."""
        return self.problem() is None

    def _bounded_check(self) -> None:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = self._pool.submit(self._check)
            pending = self._pending
        try:
            pending.result(timeout=self.budget)
        except FutureTimeout:
            raise StorageError(
                f"the store did not answer within {self.budget:.1f} s (still checking)"
            ) from None

    def _check(self) -> None:
        self.storage.check()
        if self.spool_dir is not None:
            check_writable(self.spool_dir)
