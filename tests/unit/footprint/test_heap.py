import gc
import weakref
from collections.abc import Iterator

import pytest

from footprint import heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_what_lives_at_startup_is_frozen_and_later_garbage_still_collected(unfrozen: None) -> None:
    old = Node()
    frozen = heap.freeze_startup()

    assert frozen == gc.get_freeze_count() > 0
    # Created after the freeze and then dropped: the next collection frees it.
    young = Node()
    gone = weakref.ref(young)
    del young
    gc.collect()
    assert gone() is None
    # Frozen: no collection walks it any more, so a cycle among startup objects would stay
    # (the price, paid for what lives as long as the process anyway).
    survivor = weakref.ref(old)
    del old
    gc.collect()
    assert survivor() is not None
