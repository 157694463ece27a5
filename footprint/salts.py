"""Daily visitor salts: random, one per UTC day, shared by every API process through Redis.

Plausible's scheme (``lib/plausible/session/salts.ex``): the salt is random bytes, stored so
that all processes agree, and deleted after use, so that once a day is over nobody, not even
whoever holds every configuration value, can recompute its visitor ids by sweeping the IPv4
space. The first process to need a day's salt offers one with ``SET key value NX EXAT``; the
others read the winner. The key expires when its UTC day ends.

Unlike Plausible we keep no previous salt: it serves Plausible's sessions spanning midnight,
and we count unique visitors per window of one UTC day at most, so yesterday's id would only
let today's visits be linked to yesterday's.

If Redis cannot be reached the process makes up a salt of its own and keeps ingesting; its
visitor ids then differ from the other processes' until Redis answers again (tried again
every ``RETRY_SECONDS``), when the shared salt is adopted, or its own becomes the shared one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

import redis.asyncio as aioredis

from footprint.keys import salt_key

__all__ = ["DailySalts", "SALT_BYTES", "salt_key"]

log = logging.getLogger(__name__)

SALT_BYTES = 32
RETRY_SECONDS = 30.0
# Fetched at most once a day per process, but it may be awaited before a footprint is offered:
# an unreachable Redis must cost a request little.
REDIS_TIMEOUT = 1.0


def _end_of(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) + 86_400


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DailySalts:
    """Today's salt, fetched from (or offered to) Redis once per UTC day, held in memory."""

    def __init__(self, redis_url: str | None, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.redis_url = redis_url
        self._clock = clock
        self._day: date | None = None
        self._salt = b""
        self._settled = False  # the salt is the shared one (or there is no Redis to share with)
        self._retry_at = 0.0
        self._fetch: asyncio.Task[None] | None = None

    @property
    def shared(self) -> bool:
        """Whether the salt in use is the one in Redis (False: a process-local stand-in)."""
        return self._settled and self.redis_url is not None

    async def current(self) -> bytes:
        """The salt of the current UTC day."""
        day = self._clock().astimezone(UTC).date()
        if day != self._day:
            # Yesterday's salt is dropped here: nothing in this process can reproduce it again.
            self._day, self._salt, self._settled = day, secrets.token_bytes(SALT_BYTES), False
            self._retry_at = 0.0
        if self._settled or time.monotonic() < self._retry_at:
            return self._salt
        if self.redis_url is None:
            self._settled = True
            return self._salt
        # One exchange with Redis however many requests arrive meanwhile; they all wait for it
        # (at most REDIS_TIMEOUT), so they all get the same salt.
        fetch = self._fetch
        if fetch is None or fetch.done() or fetch.get_loop() is not asyncio.get_running_loop():
            fetch = self._fetch = asyncio.create_task(self._settle(day))
        await asyncio.shield(fetch)
        return self._salt

    async def _settle(self, day: date) -> None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                salt = await self._shared_salt(day, self._salt)
        except Exception as e:  # any failure: ingest goes on with a local salt
            self._retry_at = time.monotonic() + RETRY_SECONDS
            log.warning(
                "visitor salt: Redis unreachable (%s); this process uses its own salt, so its "
                "visitor ids differ from other processes' until Redis answers",
                e,
            )
            return
        if day == self._day:  # not a fetch that outlived its day
            self._salt, self._settled = salt, True

    async def _shared_salt(self, day: date, candidate: bytes) -> bytes:
        assert self.redis_url is not None
        # A connection for this one exchange (once a day): no pool outlives the event loop that
        # made it, whichever app or test client runs us.
        client = aioredis.from_url(
            self.redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        try:
            key = salt_key(day)
            await client.set(key, candidate, nx=True, exat=_end_of(day))
            stored = await client.get(key)
        finally:
            await client.aclose()
        # None: the day ended on Redis's clock in between; the salt is then used for seconds.
        return stored if isinstance(stored, bytes) and len(stored) == SALT_BYTES else candidate
