"""How far each source partition has been written to the stores.

Before writing a batch the worker records ``inflight`` (its last offset) in a changelog-backed
table and flushes the changelog; after every store has the batch it records ``applied``. On a
replay (after a crash or a takeover) an event is:

- ``done``     (offset <= applied): every store has it, nothing to write;
- ``in_doubt`` (applied < offset <= inflight): some stores may have it;
- ``fresh``    (offset > inflight): never written.

Skipping ``done`` events saves work; correctness does not depend on these marks being current:
PostgreSQL's claim tells which copies were stored before, and ClickHouse checks exactly those.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["State", "classify", "after_write", "before_write"]

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
