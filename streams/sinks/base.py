"""The store contract: every store the worker writes to is a ``Store`` (``name``, ``open``,
``close``) with one writing step: for footprints ``Claimer.claim`` (the record) then
``Sink.write``, for notifications ``Inbox.write`` (the record) then ``FanOut.write``.

A store connects in ``open`` (also called by its first write, and again after an outage) and
releases its connections in ``close``; a writing step receives one whole batch and must be
idempotent: the worker retries a failed batch, and after a crash it re-reads events whose
offsets were not committed.

A sink reports a failed write as one of two kinds, chained to the driver's exception, in the
manner of quixstreams' ``SinkBackpressureError``: one signal means "try again later", and
retrying anything else would only stall the pipeline.

* ``StoreUnavailable``: the store is down, overloaded, timed out: the same write is retried
  with backoff, and consumption waits.
* ``StoreRefused``: the store refuses this data (a value too long, a row too large for an
  index, a type it cannot parse): retrying cannot help. The agent splits the batch until the
  refused items are alone and dead-letters those; the rest is stored.

Each sink classifies its driver's errors in its own module. Any other exception is a bug in
the worker, and is reported as one (``streams/retry.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from footprint.wire import AnyFootprint
from schemas.community import CommunityEvent

__all__ = [
    "Batch",
    "Claim",
    "Claimer",
    "Delivery",
    "FanOut",
    "Inbox",
    "Sink",
    "SinkError",
    "Store",
    "StoreRefused",
    "StoreUnavailable",
    "WindowCount",
]


class SinkError(Exception):
    """A store could not write a batch: raise one of the two kinds below."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(f"{store}: {message}")
        self.store = store
        self.message = message


class StoreUnavailable(SinkError):
    """The store is down, overloaded or timed out: the same write is retried later."""


class StoreRefused(SinkError):
    """The store refuses this data: never retried; the refused items are dead-lettered."""

    @property
    def reason(self) -> str:
        """The dead letter's ``error`` header: which store refused, and its own words."""
        return f"{self.store} refused: {self.message}"


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

    footprints: Sequence[AnyFootprint] = ()
    # (partition, offset) each footprint was read from, aligned with ``footprints``.
    sources: Sequence[tuple[int, int]] = ()
    counts: Sequence[WindowCount] = ()
    visitors: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    # Footprints a crashed pass may already have written (see streams/progress.py).
    in_doubt: frozenset[UUID] = frozenset()


@runtime_checkable
class Store(Protocol):
    """What every store has, whatever it writes."""

    # Names the store in /api/stream/status, the metrics and the dead letters' reasons.
    name: str

    async def open(self) -> None:
        """Connect; called before the first write and after a failure."""

    async def close(self) -> None:
        """Release connections."""


@runtime_checkable
class Sink(Store, Protocol):
    """A store the worker writes each batch to."""

    # Whether ``write`` stores the batch's footprints one by one (PostgreSQL, ClickHouse), so
    # that a refused batch can be split to find the refused footprints. Redis stores values
    # derived from the tables, which no footprint of the batch alone is to blame for.
    keeps_footprints: bool

    async def write(self, batch: Batch) -> None:
        """Store the batch durably, idempotently; raise StoreUnavailable or StoreRefused."""


# (event id, source partition, source offset) of the copy of an event that counts.
Claim = tuple[UUID, int, int]


@runtime_checkable
class Claimer(Store, Protocol):
    """The system of record's step before every other store: it keeps one copy per event id.

    ``claim`` stores the batch's footprints once each and answers which copy of each event is
    the one that counts (a producer's retry can put a second copy at another offset; that copy
    must count nowhere), and which events it stored for the first time (the others may have
    reached the other stores before a crash). Raises StoreUnavailable or StoreRefused.
    """

    async def claim(self, batch: Batch) -> tuple[set[Claim], set[UUID]]:
        """Store the batch; the claims that count, and the ids created now."""


@dataclass
class Delivery:
    """What the inbox stored for a batch: its rows (as the API shows them), and the unread
    count of every recipient after it."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)

    def part(self, rows: Sequence[dict[str, Any]]) -> Delivery:
        """Some of the rows, with every recipient's count (to split a refused delivery)."""
        return Delivery(list(rows), self.unread)


@runtime_checkable
class Inbox(Store, Protocol):
    """The notifications' record: one row per (event, recipient), whatever the replays."""

    async def write(self, events: Sequence[CommunityEvent]) -> Delivery:
        """Store the events' rows; the batch's rows and unread counts. Raises StoreUnavailable
        or StoreRefused."""

    async def purge(self) -> int:
        """Delete the rows past the retention; how many."""


@runtime_checkable
class FanOut(Store, Protocol):
    """Where a delivery goes after the inbox: each recipient's recent list, and live."""

    async def write(self, batch: Delivery) -> None:
        """Publish the delivery, idempotently; raise StoreUnavailable or StoreRefused."""
