"""The store half of each agent's pass, free of Faust's app: stores, tables and the dead-letter
topic come in as arguments, so unit tests drive a pass with in-memory stores
(``streams/sinks/memory.py``) and dictionaries for tables. The agents in ``streams/agents``
are the Faust shells around them: batches, progress marks, gap guards, status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from faust.types import EventT

__all__ = ["DeadLetter"]

# Sends an event (or only the given bytes of it, one item of a pack) to the dead letters with
# the reason: ``functools.partial(streams.deadletter.dead_letter, topic)`` in the agents.
DeadLetter = Callable[[EventT, str, bytes | None], Awaitable[None]]
