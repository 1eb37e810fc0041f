"""Upload slots: how many uploads the API receives at once, shared fairly between clients.

At most `total` uploads are received at once, and at most `per_client` of one client (its
API key's name, or its address when the service has no keys), so one client holding idle
connections cannot take every slot. Beyond either, a submit answers 503 with Retry-After.
Slots are counted in the event loop's thread only (no lock needed).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from core.errors import BusyError


class UploadSlots:
    """Uploads being received, in total and by client."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = min(per_client, total)
        self._held: Counter[str] = Counter()

    @property
    def in_use(self) -> int:
        """Uploads being received now."""
        return sum(self._held.values())

    @contextlib.contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """One slot for `client` while the block runs; BusyError (503) when none is free."""
        if self.in_use >= self.total:
            raise BusyError(
                "The service is receiving as many uploads as it can; please try again shortly."
            )
        if self._held[client] >= self.per_client:
            raise BusyError(
                f"This client is already sending {self.per_client} uploads, its share; please "
                "wait for one to finish."
            )
        self._held[client] += 1
        try:
            yield
        finally:
            self._held[client] -= 1
            if self._held[client] <= 0:
                del self._held[client]
