"""Live window stats read from Redis, where the worker writes its Faust table counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from footprint.windows import links_key, live_range, totals_key, visitors_key

__all__ = ["live_stats"]


def _is_bots(field: bytes | str) -> bool:
    return (field.decode() if isinstance(field, bytes) else field).endswith(":bots")


async def live_stats(redis: aioredis.Redis, window: str, at: datetime, top: int) -> dict[str, Any]:
    """Total, bots, approximate unique visitors and top links of the live range of ``window``.

    Bots (known crawler user agents) are counted apart and are in neither ``total`` nor
    ``top_pages``.
    """
    start, end = live_range(window, at.timestamp())
    key_start = int(round(start))
    pipe = redis.pipeline(transaction=False)
    pipe.zrevrange(links_key(window, key_start), 0, top - 1, withscores=True)
    pipe.hgetall(totals_key(window, key_start))
    pipe.pfcount(visitors_key(window, key_start))
    links, totals, visitors = await pipe.execute()
    return {
        "window": window,
        "start": datetime.fromtimestamp(start, UTC).isoformat(),
        "end": datetime.fromtimestamp(round(end), UTC).isoformat(),
        "total": sum(int(v) for k, v in totals.items() if not _is_bots(k)),
        "bots": sum(int(v) for k, v in totals.items() if _is_bots(k)),
        "visitors": int(visitors),
        "top_pages": [
            {"link": link.decode() if isinstance(link, bytes) else link, "count": int(score)}
            for link, score in links
        ],
    }
