"""How far each source partition has been written to the stores.

Before writing a batch the worker records ``inflight`` (its last offset) in a changelog-backed
table and flushes the changelog; after every store has the batch it records ``applied``. On a
replay (after a crash or a takeover) an event is:

- ``done``     (offset <= applied): every store has it, nothing to write;
- ``in_doubt`` (applied < offset <= inflight): some stores may have it;
- ``fresh``    (offset > inflight): never written.

Skipping ``done`` events saves work; correctness does not depend on these marks being current:
PostgreSQL's claim tells which copies were stored before, and ClickHouse checks exactly those.
It does depend on ``applied`` never being ahead of the window counts, which a replay does not
recount for ``done`` events: ``applied`` is recorded only after the batch's counts are in
their changelogs (the worker flushes its producer in between).

``applied`` also guards against skipped offsets. Footprint offsets are contiguous, and a
partition is written strictly in order, so the next event to write is ``applied + 1``. A
consumer that skips past it (Faust can, around rebalances, when records fetched in an earlier
generation are delivered late) would otherwise have the skipped events acknowledged and
committed unwritten. ``cut_at_gaps`` finds such a jump; the worker then drops the rest of the
partition's batch and seeks back, because window counts must see each partition in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

__all__ = ["State", "after_write", "before_write", "classify", "cut_at_gaps"]

State = Literal["done", "in_doubt", "fresh"]


def classify(offset: int, progress: dict[str, int] | None) -> State:
    """Where an event at ``offset`` stands, given its partition's progress record."""
    if not progress:
        return "fresh"
    if offset <= progress.get("applied", -1):
        return "done"
    if offset <= progress.get("inflight", -1):
        return "in_doubt"
    return "fresh"


def before_write(progress: dict[str, int] | None, last_offset: int) -> dict[str, int]:
    """The record to store (and flush) before a batch ending at ``last_offset`` is written."""
    applied = (progress or {}).get("applied", -1)
    inflight = max((progress or {}).get("inflight", -1), last_offset)
    return {"applied": applied, "inflight": inflight}


def after_write(progress: dict[str, int] | None, last_offset: int) -> dict[str, int]:
    """The record to store once every store has the batch ending at ``last_offset``."""
    p = progress or {}
    return {
        "applied": max(p.get("applied", -1), last_offset),
        "inflight": max(p.get("inflight", -1), last_offset),
    }


def cut_at_gaps(
    offsets: Sequence[tuple[int, int]],
    applied: Mapping[int, int],
    accepted: Mapping[int, int] | None = None,
) -> tuple[list[int], dict[int, int]]:
    """Which events of a batch may be written, and where to seek back to.

    ``offsets`` are the batch's (partition, offset) pairs in arrival order; ``applied`` the last
    written offset of each partition (absent or negative: nothing known, so any start is taken).
    Returns the indexes to keep and, per partition that jumped past its next offset, that offset.
    Everything of that partition from the jump on is left out. ``accepted`` maps a partition
    to a missing offset whose jump is to be taken (the records there no longer exist).
    """
    accepted = accepted or {}
    expected = {p: a + 1 for p, a in applied.items() if a >= 0}
    keep: list[int] = []
    seek: dict[int, int] = {}
    for index, (partition, offset) in enumerate(offsets):
        if partition in seek:
            continue
        nxt = expected.get(partition)
        if nxt is not None and offset > nxt and accepted.get(partition) != nxt:
            seek[partition] = nxt
            continue
        keep.append(index)
        expected[partition] = offset + 1 if nxt is None else max(nxt, offset + 1)
    return keep, seek
