"""How far from the moment it is sent a footprint's time may be: the event-time policy.

Live traffic is dated within seconds of being sent. A footprint dated months back is a
backfill, a broken clock, or someone filling the windows and the stores with history; one
dated ahead would make event-time windows look expired. The API checks a footprint's time
against now (422 naming ``footprint_time``); the worker checks it against the Kafka message's
timestamp, when the producer sent it (a dead letter with the reason), so a worker catching up
on a backlog judges each footprint as it was sent, not as it is read.

History is imported on purpose: messages carrying the ``footprint-backfill`` header (what
``footprint backfill`` sends) are checked against the hard bounds only (from 2000, at most five
minutes ahead).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from footprint.schema_types import MAX_AHEAD

__all__ = ["BACKFILL_HEADER", "TimePolicy", "is_backfill"]

BACKFILL_HEADER = "footprint-backfill"


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


@dataclass(frozen=True)
class TimePolicy:
    """The accepted footprint times around a reference moment (now, or when it was sent)."""

    max_age: timedelta = timedelta(days=7)
    max_ahead: timedelta = MAX_AHEAD

    def violation(self, when: datetime, reference: datetime) -> str | None:
        """Why ``when`` is not accepted ``reference`` being the moment of sending, or None."""
        if when < reference - self.max_age:
            return (
                f"more than {_span(self.max_age)} before it was sent "
                "(FOOTPRINT_EVENT_MAX_AGE); import history with `footprint backfill`"
            )
        if when > reference + self.max_ahead:
            return f"more than {_span(self.max_ahead)} ahead of when it was sent"
        return None

    def bounds(self, reference_s: float) -> tuple[float, float]:
        """The accepted range in epoch seconds around ``reference_s`` (for the hot loop)."""
        return reference_s - self.max_age.total_seconds(), reference_s + (
            self.max_ahead.total_seconds()
        )


def is_backfill(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> bool:
    """Whether a Kafka message's headers mark it as imported history."""
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return any(
        key == BACKFILL_HEADER and value not in (b"0", b"false", b"") for key, value in pairs
    )
