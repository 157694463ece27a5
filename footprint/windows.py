"""The live windows and their layout in Redis, shared by the worker (writer) and the API (reader).

Windows are in event time (``footprint_time``). ``5m`` is a hopping window of 5 minutes moving
by 1 minute; its *live* range is the one covering the last four full minutes and the current one.
Redis holds, per window range and source partition, a sorted set ``link -> count``, and per
window range a hash ``partition -> total`` (and ``"<partition>:bots" -> bot total``). Every
value is the count of one source partition, written by the one worker that owns it, so
scale-out needs no locks; readers add the partitions up. A link's footprints may be spread over
every partition (a producer without a key, or with another partitioner than Kafka's murmur2).

Every key expires at a fixed time, ``RETAIN_AFTER_END`` after its window ends (``expire_at``):
a footprint dated in the past cannot keep an old window alive, and one whose window is already
past that time is not written at all. A links set keeps at most ``FOOTPRINT_LIVE_MAX_LINKS``
links, the ones with the highest counts; the totals hash keeps every visit, so the tail still
counts in ``total`` (the live answer shows it as ``other``).
"""

from __future__ import annotations

from faust.types.windows import WindowT
from faust.windows import HoppingWindow, TumblingWindow

__all__ = [
    "RETAIN_AFTER_END",
    "WINDOWS",
    "expire_at",
    "live_range",
    "ranges",
    "retention_seconds",
    "window_start",
]

WINDOWS: dict[str, WindowT] = {
    "1m": TumblingWindow(60),
    "5m": HoppingWindow(300, 60),
    "1h": TumblingWindow(3600),
}

# How long a window stays readable after it ends: the dashboard's live view shows the current
# windows, and `GET /api/stats/live?at=` may look back this far.
RETAIN_AFTER_END = 7200


def ranges(name: str, timestamp: float) -> list[tuple[float, float]]:
    """Every range of window ``name`` that contains ``timestamp``."""
    return [(float(s), float(e)) for s, e in WINDOWS[name].ranges(timestamp)]


def live_range(name: str, timestamp: float) -> tuple[float, float]:
    """The range shown as "live" at ``timestamp``: the earliest-starting one that contains it."""
    start, end = WINDOWS[name].earliest(timestamp)
    return float(start), float(end)


def window_start(window_range: tuple[float, float]) -> int:
    """Whole seconds; used in key names."""
    return int(round(window_range[0]))


def _size(name: str) -> int:
    return int(WINDOWS[name].size)  # type: ignore[attr-defined]


def retention_seconds(name: str) -> int:
    """How long a window is kept after it starts: ``RETAIN_AFTER_END`` beyond its size."""
    return _size(name) + RETAIN_AFTER_END


def expire_at(name: str, start: int) -> int:
    """When the Redis keys of the window range starting at ``start`` expire (epoch seconds)."""
    return start + retention_seconds(name)
