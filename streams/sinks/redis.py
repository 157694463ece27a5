"""Redis sink: the live window counts the API serves, and a channel announcing each update.

Counts are written as absolute values read from the Faust tables (never incremented here), so
a replayed batch rewrites the same numbers. Unique visitors per window are a HyperLogLog.

The work and memory per window are bounded whatever the footprints' times and links: every key
expires at its window's end plus the retention (``footprint.windows.expire_at``), a window
already past it is not written, and a links set keeps only its ``max_links`` highest counts.
Because counts are absolute, a trimmed link that grows back into the top comes back with its
true count.

Errors are classified by redis-py's exception classes and Redis's error prefixes
(``classify``). The pipeline is not a transaction: when Redis refuses one command (a key
holding another type), every other command has run, so nothing is retried.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis import exceptions as rx
from redis.exceptions import RedisError

from footprint.keys import LIVE_CHANNEL, links_key, totals_key, visitors_key
from footprint.windows import expire_at
from streams.sinks.base import Batch, SinkError, StoreRefused, StoreUnavailable

__all__ = ["REFUSED_PREFIXES", "RedisPlan", "RedisSink", "classify", "plan"]

DEFAULT_MAX_LINKS = 1000

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


@dataclass
class RedisPlan:
    """What one batch writes: per key its values and when it expires; the windows touched."""

    links: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    visitors: dict[str, set[str]] = field(default_factory=dict)
    expire: dict[str, int] = field(default_factory=dict)
    touched: set[tuple[str, int]] = field(default_factory=set)
    skipped: int = 0  # counts and visitor sets of windows already past their retention


def plan(batch: Batch, now: float, max_links: int) -> RedisPlan:
    """The writes of ``batch`` at time ``now`` (epoch seconds), at most ``max_links`` per set."""
    out = RedisPlan()
    links: dict[str, dict[str, int]] = defaultdict(dict)
    totals: dict[str, dict[str, int]] = defaultdict(dict)
    for c in batch.counts:
        start = int(round(c.start))
        expires = expire_at(c.window, start)
        if expires <= now:
            # Nobody can read this window any more: writing it would only cost memory.
            out.skipped += 1
            continue
        out.touched.add((c.window, start))
        if c.link is not None:
            key = links_key(c.window, start, c.partition or 0)
            links[key][c.link] = c.count
        else:
            key = totals_key(c.window, start)
            field_ = f"{c.partition}:bots" if c.bots else str(c.partition)
            totals[key][field_] = c.count
        out.expire[key] = expires
    for key, mapping in links.items():
        if len(mapping) > max_links:
            # A link below the batch's own top N can never reach the set's top N: the N above
            # it are in the set too, with counts at least as high. Not sending it saves Redis work.
            mapping = dict(heapq.nlargest(max_links, mapping.items(), key=lambda kv: kv[1]))
        out.links[key] = mapping
    out.totals = dict(totals)
    for (window, start), ids in batch.visitors.items():
        expires = expire_at(window, start)
        if expires <= now:
            out.skipped += 1
            continue
        key = visitors_key(window, start)
        out.visitors[key] = ids
        out.expire[key] = expires
        out.touched.add((window, start))
    return out


class RedisSink:
    """Live window counts in Redis, one pipeline per batch."""

    name = "redis"
    keeps_footprints = False  # counts and visitor sets: values of the tables, not footprints

    def __init__(self, url: str, max_links: int = DEFAULT_MAX_LINKS) -> None:
        self.url = url
        self.max_links = max_links
        self._redis: aioredis.Redis | None = None

    async def open(self) -> None:
        """Create the client (connections are made on first use)."""
        if self._redis is None:
            self._redis = aioredis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    async def write(self, batch: Batch) -> None:
        """Set the counts of every live window touched by the batch and announce them."""
        if not batch.counts and not batch.visitors:
            return
        p = plan(batch, time.time(), self.max_links)
        if not p.touched:
            return
        await self.open()
        assert self._redis is not None
        pipe = self._redis.pipeline(transaction=False)
        for key, mapping in p.links.items():
            pipe.zadd(key, mapping)  # type: ignore[arg-type]
            # Keep the highest counts only (ranks are ascending: drop from the bottom).
            pipe.zremrangebyrank(key, 0, -(self.max_links + 1))
        for key, totals in p.totals.items():
            pipe.hset(key, mapping=totals)  # type: ignore[arg-type]
        for key, ids in p.visitors.items():
            pipe.pfadd(key, *ids)
        for key, when in p.expire.items():
            pipe.expireat(key, when)
        message = json.dumps({"windows": sorted([w, s] for w, s in p.touched)})
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
