"""Live window stats read from Redis, where the worker writes its Faust table counts."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from footprint.keys import links_key, totals_key, visitors_key
from footprint.windows import live_range

__all__ = ["live_stats"]


def _is_bots(field: bytes | str) -> bool:
    return (field.decode() if isinstance(field, bytes) else field).endswith(":bots")


async def live_stats(
    redis: aioredis.Redis, window: str, at: datetime, top: int, partitions: int
) -> dict[str, Any]:
    """Total, bots, approximate unique visitors and top links of the live range of ``window``.

    Bots (known crawler user agents) are counted apart and are in neither ``total`` nor
    ``top_pages``. A link's count is the sum of its counts from the ``partitions`` source
    partitions. ``other`` is the visits to every link not in ``top_pages``, including the tail
    Redis does not keep (beyond ``FOOTPRINT_LIVE_MAX_LINKS`` per window and partition).
    """
    start, end = live_range(window, at.timestamp())
    key_start = int(round(start))
    pipe = redis.pipeline(transaction=False)
    pipe.zunion([links_key(window, key_start, p) for p in range(partitions)], withscores=True)
    pipe.hgetall(totals_key(window, key_start))
    pipe.pfcount(visitors_key(window, key_start))
    union, totals, visitors = await pipe.execute()
    # ZUNION sums the partitions' scores and answers in ascending order: take the top from the end.
    links = heapq.nsmallest(top, union, key=lambda pair: (-pair[1], pair[0]))
    total = sum(int(v) for k, v in totals.items() if not _is_bots(k))
    listed = sum(int(score) for _, score in links)
    return {
        "window": window,
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "end": datetime.fromtimestamp(round(end), UTC).isoformat(),
        "total": total,
        "bots": sum(int(v) for k, v in totals.items() if _is_bots(k)),
        "visitors": int(visitors),
        "top_pages": [
            {"link": link.decode() if isinstance(link, bytes) else link, "count": int(score)}
            for link, score in links
        ],
        # The totals hash counts every visit, the links sets only the top: the difference is
        # what no listed link accounts for.
        "other": max(0, total - listed),
    }
