"""The decode and encode threads: order, bounded buffering, errors and early stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from worker.pipeline import BackgroundWriter, prefetch


def test_prefetch_keeps_order_and_runs_on_another_thread() -> None:
    threads: set[str] = set()

    def produce() -> Iterator[int]:
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(prefetch(produce(), depth=4)) == list(range(50))
    assert threads == {"mcnet-decode"}


def test_prefetch_reads_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def produce() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    stream = prefetch(produce(), depth=3)
    assert next(stream) == 0
    time.sleep(0.3)
    # one taken, three buffered, one waiting to be put
    assert len(produced) <= 5
    stream.close()


def test_prefetch_raises_producer_error_in_consumer() -> None:
    def produce() -> Iterator[int]:
        yield 1
        raise ValueError("damaged frame")

    stream = prefetch(produce(), depth=2)
    assert next(stream) == 1
    with pytest.raises(ValueError, match="damaged frame"):
        next(stream)


def test_prefetch_close_stops_and_cleans_up_producer() -> None:
    closed = threading.Event()

    def produce() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    stream = prefetch(produce(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.is_set()


def test_background_writer_writes_all_in_order() -> None:
    written: list[int] = []
    with BackgroundWriter(written.append, depth=2) as writer:
        for i in range(30):
            writer.submit(i)
    assert written == list(range(30))


def test_background_writer_error_reaches_caller() -> None:
    def write(item: int) -> None:
        if item == 3:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with BackgroundWriter(write, depth=1) as writer:
            for i in range(100):
                writer.submit(i)
