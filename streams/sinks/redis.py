"""Redis sink: the live window counts the API serves, and a channel announcing each update.

Counts are written as absolute values read from the Faust tables (never incremented here), so
a replayed batch rewrites the same numbers. Unique visitors per window are a HyperLogLog.

Errors are classified by redis-py's exception classes and Redis's error prefixes
(``classify``). The pipeline is not a transaction: when Redis refuses one command (a key
holding another type), every other command has run, so nothing is retried.
"""

from __future__ import annotations

import json
from collections import defaultdict

import redis.asyncio as aioredis
from redis import exceptions as rx
from redis.exceptions import RedisError

from footprint.windows import LIVE_CHANNEL, links_key, retention_seconds, totals_key, visitors_key
from streams.sinks.base import Batch, SinkError, StoreRefused, StoreUnavailable

__all__ = ["REFUSED_PREFIXES", "RedisSink", "classify"]

# Error replies about the value or the key, not the server: the same command fails again.
# (Inside a Lua script Redis reports them with the same first word.) Everything else --
# connection and timeout errors, LOADING, BUSY, READONLY (a replica), OOM, TRYAGAIN, MASTERDOWN,
# an unknown reply -- is taken as an outage and retried: when unsure, the worker waits.
REFUSED_PREFIXES: tuple[str, ...] = (
    "WRONGTYPE",  # the key holds another type (someone else wrote it)
    "ERR value is not",  # … an integer or out of range / a valid float
    "ERR increment or decrement would overflow",
    "ERR string exceeds maximum allowed size",
    "ERR min or max is not a float",
)
_OUTAGES = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.OutOfMemoryError,
    rx.ReadOnlyError,
    rx.TryAgainError,
)


def classify(e: RedisError, store: str = "redis") -> SinkError:
    """The kind of a Redis failure, with Redis's own message."""
    message = str(e).strip()
    if isinstance(e, _OUTAGES):
        return StoreUnavailable(store, f"{type(e).__name__}: {message}")
    if isinstance(e, rx.DataError):
        # redis-py refused to encode a value (e.g. None): nothing was sent.
        return StoreRefused(store, message)
    # A refused script command is reported as "Error running script …: WRONGTYPE …" by
    # older servers: look at every part of the message.
    if isinstance(e, rx.ResponseError) and any(p in message for p in REFUSED_PREFIXES):
        return StoreRefused(store, message)
    return StoreUnavailable(store, f"{type(e).__name__}: {message}")


class RedisSink:
    """Live window counts in Redis, one pipeline per batch."""

    name = "redis"
    keeps_footprints = False  # counts and visitor sets: values of the tables, not footprints

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: aioredis.Redis | None = None

    async def open(self) -> None:
        """Create the client (connections are made on first use)."""
        if self._redis is None:
            self._redis = aioredis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    async def write(self, batch: Batch) -> None:
        """Set the counts of every window touched by the batch and announce them."""
        if not batch.counts and not batch.visitors:
            return
        await self.open()
        assert self._redis is not None
        pipe = self._redis.pipeline(transaction=False)
        links: dict[str, dict[str, int]] = defaultdict(dict)
        totals: dict[str, dict[str, int]] = defaultdict(dict)
        ttl: dict[str, int] = {}
        touched: set[tuple[str, int]] = set()
        for c in batch.counts:
            start = int(round(c.start))
            touched.add((c.window, start))
            if c.link is not None:
                key = links_key(c.window, start, c.partition or 0)
                links[key][c.link] = c.count
            else:
                key = totals_key(c.window, start)
                field = f"{c.partition}:bots" if c.bots else str(c.partition)
                totals[key][field] = c.count
            ttl[key] = retention_seconds(c.window)
        for key, mapping in links.items():
            pipe.zadd(key, mapping)  # type: ignore[arg-type]
        for key, mapping in totals.items():
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
        for (window, start), ids in batch.visitors.items():
            key = visitors_key(window, start)
            pipe.pfadd(key, *ids)
            ttl[key] = retention_seconds(window)
            touched.add((window, start))
        for key, seconds in ttl.items():
            pipe.expire(key, seconds)
        message = json.dumps({"windows": sorted([w, s] for w, s in touched)})
        pipe.publish(LIVE_CHANNEL, message)
        try:
            await pipe.execute()
        except RedisError as e:
            raise classify(e) from e

    async def close(self) -> None:
        """Close the client's connections."""
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()
