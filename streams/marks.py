"""Per-partition progress marks in a changelog-backed table, for any agent that writes in order.

An agent records, per source partition, the last offset written to its stores (``applied``)
and, for footprints, the one in flight. ``GapGuard`` (streams/gaps.py) checks every batch
against ``applied + 1``: seen on Apache Kafka and on Tansu after restarts and takeovers, Faust
can deliver a batch that starts past it, and would then commit the skipped records unwritten.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from faust.streams import _current_event
from faust.types import EventT
from faust.types.tables import TableT

__all__ = ["applied", "event_context", "last_events", "mark"]


@contextlib.contextmanager
def event_context(event: Any) -> Iterator[None]:
    """Make ``event`` the current one, so a table write goes to its changelog partition."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def last_events(events: Sequence[EventT]) -> dict[int, EventT]:
    """The last event of each source partition in the batch."""
    last: dict[int, EventT] = {}
    for event in events:
        last[event.message.partition] = event
    return last


def mark(table: TableT, events: Sequence[EventT], update: Callable[..., dict[str, int]]) -> None:
    """Record ``update(record, last offset)`` for every partition the batch came from."""
    for partition, event in last_events(events).items():
        key = str(partition)
        with event_context(event):
            table[key] = update(table.get(key), event.message.offset)


def applied(table: TableT, partitions: Iterable[int]) -> dict[int, int]:
    """The last written offset of each partition that has a record."""
    found = {}
    for partition in partitions:
        record = table.get(str(partition))
        if record:
            found[partition] = record.get("applied", -1)
    return found
