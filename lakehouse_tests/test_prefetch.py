"""The writer's read-ahead thread: order, errors, early stops and bounded memory."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakehouse.warehouse.prefetch import prefetched


class FileBroken(Exception):
    pass


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=4))
def test_items_arrive_in_order_and_complete(items, depth):
    assert list(prefetched(iter(items), depth)) == items


def test_a_producer_error_reaches_the_consumer_as_raised_after_the_items_before_it():
    def produce():
        yield 1
        yield 2
        raise FileBroken("row group 3 unreadable")

    seen = []
    with pytest.raises(FileBroken, match="row group 3 unreadable"):
        for item in prefetched(produce()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_stops_the_producer_and_closes_its_generator():
    """A write that fails must not leave a thread reading the rest of the hour."""
    produced, closed = [], threading.Event()

    def produce():
        try:
            for index in range(1_000):
                produced.append(index)
                yield index
        finally:
            closed.set()

    threads_before = threading.active_count()
    with pytest.raises(OSError, match="disk full"):
        for item in prefetched(produce(), depth=1):
            if item == 2:
                raise OSError("disk full")
    assert closed.is_set()
    # At most the item being consumed, one waiting and one being produced were read.
    assert len(produced) <= 2 + 1 + 1 + 1, produced
    assert threading.active_count() == threads_before


def test_the_producer_runs_at_most_depth_ahead():
    produced = []

    def produce():
        for index in range(100):
            produced.append(index)
            yield index

    items = prefetched(produce(), depth=2)
    assert next(items) == 0
    threading.Event().wait(0.3)  # let the producer run as far as it may
    # item 0 consumed, 2 waiting, 1 produced and blocked on the full queue
    assert len(produced) <= 1 + 2 + 1, produced
    items.close()
