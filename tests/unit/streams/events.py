"""Stand-ins for Faust events: what a pass reads of one (its bytes and where it was read)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)  # compared by identity, as Faust's events are
class Message:
    partition: int
    offset: int
    topic: str = "footprints"
    timestamp: float = 0.0
    headers: dict[str, bytes] = field(default_factory=dict)


@dataclass(eq=False)
class Event:
    value: bytes
    message: Message
    key: bytes | None = None


def event(value: bytes, partition: int, offset: int, topic: str = "footprints") -> Event:
    """One message of ``topic`` read at (``partition``, ``offset``)."""
    return Event(value, Message(partition, offset, topic))
