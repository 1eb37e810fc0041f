"""Threads that overlap decoding and encoding with the model.

`prefetch` runs a frame iterator (decoding, cropping) on its own thread; `BackgroundWriter`
runs composition and encoding on another. Both hold at most `depth` frames, so memory stays
flat, and both hand an exception raised on their thread (a damaged file, a cancel) to the
caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.1


class _End:
    """Marks the end of a stream (or carries the exception that ended it)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(items: Iterable[T], depth: int) -> Generator[T, None, None]:
    """Yield `items`, produced up to `depth` ahead on a background thread.

    Closing the returned generator (or abandoning it) stops the producer at its next item.
    """
    buffer: queue.Queue[T | _End] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: T | _End) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as err:  # handed to the consumer's thread, raised there
            put(_End(err))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's cleanup (its open file) runs on this thread
        put(_End())

    thread = threading.Thread(target=produce, name="mcnet-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundWriter(Generic[T]):
    """Calls `write(item)` for each submitted item on a background thread, in order.

    Use as a context manager: leaving it waits for every item to be written; an error of
    `write` is raised from the next `submit` or from leaving.
    """

    def __init__(self, write: Callable[[T], None], depth: int) -> None:
        self._write = write
        self._queue: queue.Queue[T | _End] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mcnet-encode", daemon=True)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as err:  # raised on the caller's thread
                    self._error = err

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: T) -> None:
        self._raise_error()
        self._queue.put(item)

    def __enter__(self) -> BackgroundWriter[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(_End())
        self._thread.join()
        if exc[0] is None:
            self._raise_error()
