"""The store half of each agent's pass, free of Faust's app: stores, tables and the dead-letter
topic come in as arguments, so unit tests drive a pass with in-memory stores
(``streams/sinks/memory.py``) and dictionaries for tables. The agents in ``streams/agents``
are the Faust shells around them: batches, progress marks, gap guards, status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence

from faust.types import EventT

__all__ = ["DeadLetter", "passes"]

# Sends an event (or only the given bytes of it, one item of a pack) to the dead letters with
# the reason: ``functools.partial(streams.deadletter.dead_letter, topic)`` in the agents.
DeadLetter = Callable[[EventT, str, bytes | None], Awaitable[None]]


def passes(events: Sequence[EventT], max_bytes: int) -> Iterator[Sequence[EventT]]:
    """``events`` cut, in order, into runs of at most ``max_bytes`` of message values.

    The footprint agent's batches end once their messages reach ``max_bytes``
    (``ReadyStream.take_ready``), so a batch can pass it by its last message, a pack of up to
    hundreds of footprints: that message is written in a run of its own, and the footprints
    decoded at once stay bounded. A message is never split (its offset is one progress mark);
    one larger than ``max_bytes`` is a run of its own.
    """
    start, size = 0, 0
    for i, event in enumerate(events):
        value = event.value  # the message's bytes: the footprints topic is read raw
        length = len(value) if isinstance(value, bytes) else 0
        if i > start and size + length > max_bytes:
            yield events[start:i]
            start, size = i, 0
        size += length
    if start < len(events):
        yield events[start:]
