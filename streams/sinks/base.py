"""The sink protocol: every store the worker writes to implements ``open``/``write``/``close``.

``write`` receives one whole batch and must be idempotent: the worker retries a failed batch,
and after a crash it re-reads events whose offsets were not committed. Each sink raises its own
``SinkError`` subclass, chained to the driver's exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from uuid import UUID

from schemas.footprint import Footprint

__all__ = ["Batch", "ListSink", "Sink", "SinkError", "WindowCount"]


class SinkError(Exception):
    """A sink could not write a batch; the batch is retried."""


@dataclass(frozen=True, slots=True)
class WindowCount:
    """An absolute count from a Faust window table.

    Every count is of one source ``partition``. ``link`` is set for a per-link count; for a
    site-wide count it is ``None`` (a count of bots when ``bots``).
    """

    window: str
    start: float
    end: float
    count: int
    link: str | None = None
    partition: int | None = None
    bots: bool = False


@dataclass
class Batch:
    """What one pass of the agent hands to the sinks."""

    footprints: Sequence[Footprint] = ()
    # (partition, offset) each footprint was read from, aligned with ``footprints``.
    sources: Sequence[tuple[int, int]] = ()
    counts: Sequence[WindowCount] = ()
    visitors: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    # Footprints a crashed pass may already have written (see streams/progress.py).
    in_doubt: frozenset[UUID] = frozenset()


@runtime_checkable
class Sink(Protocol):
    """A store the worker writes each batch to."""

    name: str

    async def open(self) -> None:
        """Connect; called before the first write and after a failure."""

    async def write(self, batch: Batch) -> None:
        """Store the batch durably, idempotently; raise a SinkError on failure."""

    async def close(self) -> None:
        """Release connections."""


class ListSink:
    """Keeps every batch in memory: for unit tests of the agent's logic."""

    name = "list"

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.opened = False

    async def open(self) -> None:
        """Nothing to connect to."""
        self.opened = True

    async def write(self, batch: Batch) -> None:
        """Remember the batch."""
        self.batches.append(batch)

    async def close(self) -> None:
        """Nothing to release."""
        self.opened = False
