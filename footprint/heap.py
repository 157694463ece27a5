"""Short collector pauses for the worker.

CPython's cyclic garbage collector walks every tracked object of the oldest generation when it
collects it; in a worker that is first of all what importing Faust, aiokafka, pydantic and the
stores left behind, objects that live as long as the process. Collecting those once and then
freezing them (``gc.freeze``) takes them out of every later collection: a full collection in
the worker went from 14-62 ms to about 1 ms (BENCHMARKS.md, notifications), and one such pause
was enough to hold up every notification in flight. Objects created afterwards are collected as
before, and a frozen object is still freed by reference counting when its last reference goes;
only a reference cycle among frozen objects would stay, which is why this runs once, after the
worker has started, on what lives as long as the process anyway.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup"]


def freeze_startup() -> int:
    """Collect, then freeze everything still alive; how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
