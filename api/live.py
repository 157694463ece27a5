"""Live window stats read from Redis, where the worker writes its Faust table counts."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from footprint.keys import EVENT_MEMBER, is_event_member, links_key, totals_key, visitors_key
from footprint.windows import live_range

__all__ = ["live_stats"]


def _is_bots(field: bytes | str) -> bool:
    return (field.decode() if isinstance(field, bytes) else field).endswith(":bots")


async def live_stats(
    redis: aioredis.Redis, window: str, at: datetime, top: int, partitions: int
) -> dict[str, Any]:
    """Total, bots, approximate unique visitors, top links and top custom events of the live
    range of ``window``.

    ``total`` counts every footprint: page views and custom events (those are counted under
    their name, ``top_events``, not under their page). Bots (known crawler user agents) are
    counted apart and are in none of them. A count is the sum of its counts from the
    ``partitions`` source partitions. ``other`` is what no listed page or event accounts for,
    including the tail Redis does not keep (beyond ``FOOTPRINT_LIVE_MAX_LINKS`` per window and
    partition).
    """
    start, end = live_range(window, at.timestamp())
    key_start = int(round(start))
    pipe = redis.pipeline(transaction=False)
    pipe.zunion([links_key(window, key_start, p) for p in range(partitions)], withscores=True)
    pipe.hgetall(totals_key(window, key_start))
    pipe.pfcount(visitors_key(window, key_start))
    union, totals, visitors = await pipe.execute()
    pages: list[tuple[str, float]] = []
    events: list[tuple[str, float]] = []
    for member, score in union:
        text = member.decode() if isinstance(member, bytes) else member
        (events if is_event_member(text) else pages).append((text, score))
    # ZUNION sums the partitions' scores; the top are the highest, ties by name.
    links = heapq.nsmallest(top, pages, key=lambda pair: (-pair[1], pair[0]))
    names = heapq.nsmallest(top, events, key=lambda pair: (-pair[1], pair[0]))
    total = sum(int(v) for k, v in totals.items() if not _is_bots(k))
    listed = sum(int(score) for _, score in links) + sum(int(score) for _, score in names)
    return {
        "window": window,
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "end": datetime.fromtimestamp(round(end), UTC).isoformat(),
        "total": total,
        "bots": sum(int(v) for k, v in totals.items() if _is_bots(k)),
        "visitors": int(visitors),
        "top_pages": [{"link": link, "count": int(score)} for link, score in links],
        "top_events": [
            {"name": name[len(EVENT_MEMBER) :], "count": int(score)} for name, score in names
        ],
        # The totals hash counts every footprint, the sorted sets only the top: the difference
        # is what no listed page or event accounts for.
        "other": max(0, total - listed),
    }
