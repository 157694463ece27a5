"""The live windows and their layout in Redis, shared by the worker (writer) and the API (reader).

Windows are in event time (``footprint_time``). ``5m`` is a hopping window of 5 minutes moving
by 1 minute; its *live* range is the one covering the last four full minutes and the current one.
Redis holds, per window range and source partition, a sorted set ``link -> count``, and per
window range a hash ``partition -> total`` (and ``"<partition>:bots" -> bot total``). Every
value is the count of one source partition, written by the one worker that owns it, so
scale-out needs no locks; readers add the partitions up. A link's footprints may be spread over
every partition (a producer without a key, or with another partitioner than Kafka's murmur2).
"""

from __future__ import annotations

from faust.types.windows import WindowT
from faust.windows import HoppingWindow, TumblingWindow

__all__ = [
    "LIVE_CHANNEL",
    "WINDOWS",
    "links_key",
    "live_range",
    "ranges",
    "retention_seconds",
    "totals_key",
    "visitors_key",
    "window_start",
]

WINDOWS: dict[str, WindowT] = {
    "1m": TumblingWindow(60),
    "5m": HoppingWindow(300, 60),
    "1h": TumblingWindow(3600),
}

LIVE_CHANNEL = "footprint:live"


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


def retention_seconds(name: str) -> int:
    """How long Redis keeps a window after it starts: two hours beyond its size."""
    size = int(WINDOWS[name].size)  # type: ignore[attr-defined]
    return size + 7200


def links_key(name: str, start: int, partition: int) -> str:
    """Sorted set of link -> count for one window range, counted from one source partition."""
    return f"footprint:live:{name}:{start}:links:{partition}"


def totals_key(name: str, start: int) -> str:
    """Hash of source partition -> total count for one window range."""
    return f"footprint:live:{name}:{start}:totals"


def visitors_key(name: str, start: int) -> str:
    """HyperLogLog of visitor ids for one window range (approximate unique visitors)."""
    return f"footprint:live:{name}:{start}:visitors"
