"""Produce the next items in a background thread while the caller consumes the current one.

Writing a partition is a pipeline: read or compute a row group, validate it, encode and write
it. Each stage is mostly native code that releases the GIL (Arrow readers and casts, DuckDB,
Parquet encoding), so on a machine with two cores the writer can encode one row group while the
next is read and validated, instead of the stages taking turns. Order is kept, at most
``depth`` items wait between the two threads (memory stays bounded), an exception in the
producer is raised in the consumer as it was, and a consumer that stops early (an error while
writing) stops the producer before it reads on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_SECONDS = 0.1


class _Raised:
    """An exception of the producer, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` in order, produced up to ``depth`` ahead by a background thread."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as error:  # every failure belongs to the consumer
            offer(_Raised(error))
            return
        offer(_DONE)

    producer = threading.Thread(target=produce, name="prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()  # a generator's own cleanup (finally blocks) runs now, not at collection
