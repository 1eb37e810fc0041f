"""The store's health as /readyz reads it: answered within a bound, one check at a time.

`storage.check()` writes and deletes a small object; against an unreachable S3 endpoint
it can take as long as the client's connect timeouts and retries. `StorageProbe.check`
runs it in a thread of its own and waits at most `budget` seconds for it: a slow store
is reported as not answering at once. Callers that come while a check is in progress
share it instead of starting another, so frequent probes of a stalled store cost one
check at a time, and each answer reflects the store as it is (no answer is kept).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from core.storage import StorageError


class StorageProbe:
    """`check()` of the store, bounded in time, shared while it runs."""

    def __init__(self, check: Callable[[], None], budget: float = 1.5) -> None:
        self._check = check
        self.budget = budget
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storage-probe")
        self._lock = threading.Lock()
        self._pending: Future[None] | None = None

    def check(self) -> None:
        """Return when the store takes a write; raise StorageError when it refused it or
        has not answered within `budget` seconds."""
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
