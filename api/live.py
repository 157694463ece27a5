"""Live window stats read from Redis, where the worker writes its Faust table counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from footprint.windows import links_key, live_range, totals_key, visitors_key

__all__ = ["live_stats"]


async def live_stats(redis: aioredis.Redis, window: str, at: datetime, top: int) -> dict[str, Any]:
    """Total, approximate unique visitors and top links of the live range of ``window``."""
    start, end = live_range(window, at.timestamp())
    key_start = int(round(start))
    pipe = redis.pipeline(transaction=False)
    pipe.zrevrange(links_key(window, key_start), 0, top - 1, withscores=True)
    pipe.hvals(totals_key(window, key_start))
    pipe.pfcount(visitors_key(window, key_start))
    links, totals, visitors = await pipe.execute()
    return {
        "window": window,
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "end": datetime.fromtimestamp(round(end), UTC).isoformat(),
        "total": sum(int(v) for v in totals),
        "visitors": int(visitors),
        "top_pages": [
            {"link": link.decode() if isinstance(link, bytes) else link, "count": int(score)}
            for link, score in links
        ],
    }
