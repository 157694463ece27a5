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

__all__ = ["YOUNG_THRESHOLD", "freeze_startup", "hold_batches"]

# Tracked objects allocated and not yet freed before the young generation is collected.
YOUNG_THRESHOLD = 500_000


def freeze_startup() -> int:
    """Collect, then freeze everything still alive; how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def hold_batches() -> None:
    """Keep the collector off a batch while its pass runs (the footprint agent's setting).

    A batch holds its events until its pass ends: 20,000 single messages are ~150,000 tracked
    objects (Faust's messages and events, their headers, our pairs). The young generation is
    collected when the objects allocated and not yet freed pass its threshold, so a threshold
    below a batch's objects collected them while they were all alive, and every twentieth
    time walked them again in the middle generation. Above it, the batch is freed by
    reference counting when its pass ends, before the threshold is reached: on 200,000
    single footprints (Tansu), 62 young and 2 middle collections took 1.1-1.2 s with 50,000,
    none with 500,000, and the worker ran 4-9 % faster (A/B of three pairs, 17,691 / 17,126 /
    17,694 -> 19,331 / 18,724 / 18,645 footprints/s). A young collection that does come walks
    at most that many objects (~25 ms for 500,000 measured here). Startup objects are frozen
    out of every collection.
    """
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
