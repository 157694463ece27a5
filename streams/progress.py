"""How far each source partition has been written to the stores: exactly-once without transactions.

The broker has no transactions, so a crash can leave a batch written to some stores and not
others, and its events are read again. Before writing a batch the worker records
``inflight`` (its last offset) in a changelog-backed table and flushes the changelog; after every
store has the batch it records ``applied``. On a replay an event is:

- ``done``     (offset <= applied): every store has it, nothing to write;
- ``in_doubt`` (applied < offset <= inflight): some stores may have it; idempotent stores just
  write it again, ClickHouse first asks which of these event ids it already holds;
- ``fresh``    (offset > inflight): never written.
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
