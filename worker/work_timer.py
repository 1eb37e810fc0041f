"""A job's time limit counted by the time the worker ran, not by the clock on the wall.

RQ's time limit is an alarm on the wall clock, so a worker paused mid-job (SIGSTOP, a
frozen VM) resumes past the limit and fails the job for good, though the job did no more
work. `WorkTimeLimit` counts time in ticks of `TICK_S` from a thread: a gap between two
ticks longer than `PAUSE_S` is a pause of the whole process and counts as one tick. When
the counted time reaches the limit it raises the timeout exception in the job's thread
(through SIGALRM, as RQ's own limit does).
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any

from rq.timeouts import BaseDeathPenalty, JobTimeoutException

TICK_S = 0.5
PAUSE_S = 5.0  # a gap between ticks this long is a pause, not work (load delays less)


class WorkTimeLimit(BaseDeathPenalty):
    """`with WorkTimeLimit(seconds, JobTimeoutException):` in the main thread."""

    def __init__(
        self, timeout: float, exception: type[BaseException] = JobTimeoutException, **_: Any
    ) -> None:
        super().__init__(timeout, exception)
        self.worked = 0.0  # seconds counted so far
        self.paused = 0.0  # seconds of pauses left out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._target = threading.main_thread().ident
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        raise self._exception(
            f"Task exceeded maximum timeout value ({self._timeout} seconds of work)"
        )

    def setup_death_penalty(self) -> None:
        """Start counting (in the main thread: the exception is raised there)."""
        if self._timeout is None or self._timeout <= 0:
            return
        self._previous = signal.signal(signal.SIGALRM, self._handle)
        self._thread = threading.Thread(target=self._count, name="work-timer", daemon=True)
        self._thread.start()

    def cancel_death_penalty(self) -> None:
        """Stop counting and put the previous SIGALRM handler back."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        signal.signal(signal.SIGALRM, self._previous or signal.SIG_DFL)

    def _count(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK_S):
            moment = time.monotonic()
            gap = moment - last
            last = moment
            if gap > PAUSE_S:
                self.paused += gap - TICK_S
                gap = TICK_S
            self.worked += gap
            if self.worked >= self._timeout:
                if not self._stop.is_set() and self._target is not None:
                    signal.pthread_kill(self._target, signal.SIGALRM)
                return
