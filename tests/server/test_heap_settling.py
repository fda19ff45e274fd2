"""A started worker freezes its start-up heap and collects the young generation less often
(the collector was the largest single cost per proxied request; see benchmarks/RESULTS.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from thrifty.server.run import GC_YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_settle_heap_freezes_start_up_objects_and_raises_the_young_threshold(
    restored_gc: None,
) -> None:
    gc.unfreeze()
    older = gc.get_threshold()[1:]
    start_up = [{"route": i} for i in range(1000)]  # objects alive when the worker starts

    settle_heap()

    assert gc.get_freeze_count() >= len(start_up)
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *older)
    assert gc.isenabled()
