"""The worker's announcement of itself (core.liveness), renewed from a thread of its own.

Renewed every heartbeat interval whatever the worker is doing, and lapsing `3 x` that
interval after the last renewal, so that /readyz stops counting a killed worker within
seconds. It carries the worker's model label and, while the worker takes no jobs, why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError

from core.liveness import WorkerState, announce, withdraw

logger = logging.getLogger(__name__)

TTL_HEARTBEATS = 3  # an announcement lasts this many heartbeat intervals


class Announcer:
    """Announces `name` on `queue` every `interval` seconds until stopped."""

    def __init__(
        self,
        connection: Redis,
        queue: str,
        name: str,
        model: str,
        interval: float,
        problem: Callable[[], str | None],
    ) -> None:
        self.connection = connection
        self.queue = queue
        self.name = name
        self.model = model
        self.interval = interval
        self.problem = problem
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def announce_now(self) -> None:
        """Announce once, at once (after a change of state)."""
        state = WorkerState(self.name, self.model, self.problem())
        try:
            announce(self.connection, self.queue, state, self.interval * TTL_HEARTBEATS)
        except RedisError as exc:
            logger.debug("announcement not sent: %s", exc)

    def start(self) -> None:
        """Announce now, then every `interval` seconds from a daemon thread."""
        self.announce_now()
        self._thread = threading.Thread(target=self._loop, name="announcer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop announcing and withdraw: the worker stops counting at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            withdraw(self.connection, self.queue, self.name)
        except RedisError as exc:
            logger.warning("worker not withdrawn (its announcement lapses): %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.announce_now()
