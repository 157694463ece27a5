"""One live snapshot per update, shared by every ``/ws/live`` socket of the process.

One task per process waits for the worker's announcements (through the hub), takes the
snapshot once, encodes it once, and wakes every socket, which sends those same bytes. Snapshots
are at least ``min_gap`` apart: announcements arriving meanwhile are folded into the next one.
Without announcements a snapshot is taken every ``refresh`` seconds while sockets are open, so
that a window rolling over to an empty one is shown too. A slow socket is not queued old
snapshots: it sends the newest when it is ready again. A socket that connects is sent the
current snapshot if it is younger than ``refresh``; otherwise it asks for a fresh one, so a
burst of connections costs one snapshot, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from api.hub import Hub

__all__ = ["LiveFeed", "Subscription"]

log = logging.getLogger(__name__)


class Subscription:
    """One socket's place in the feed: which snapshot it sent last."""

    def __init__(self, feed: LiveFeed, seen: int) -> None:
        self.feed = feed
        self.seen = seen
        self.wake = asyncio.Event()

    async def next(self) -> str:
        """The newest snapshot this socket has not sent yet, as JSON text (waits for one)."""
        while self.feed.version <= self.seen:
            self.wake.clear()
            await self.wake.wait()
        self.seen = self.feed.version
        return self.feed.text


class LiveFeed:
    """Computes the live snapshot once per update for all subscribed sockets."""

    def __init__(
        self,
        hub: Hub,
        compute: Callable[[], Awaitable[dict[str, Any]]],
        *,
        min_gap: float,
        refresh: float,
    ) -> None:
        self.hub = hub
        self.compute = compute
        self.min_gap = min_gap
        self.refresh = refresh
        self.version = 0
        self.text = ""
        self.snapshots = 0  # computations, for the metrics and the tests
        self._taken_at = float("-inf")
        self._subs: set[Subscription] = set()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def sockets(self) -> int:
        """Subscribed sockets."""
        return len(self._subs)

    def subscribe(self) -> Subscription:
        """A subscription that first yields a recent snapshot, then every new one."""
        fresh = time.monotonic() - self._taken_at < self.refresh
        sub = Subscription(self, seen=0 if fresh else self.version)
        self._subs.add(sub)
        if not fresh:
            self._kick.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a socket's subscription."""
        self._subs.discard(sub)

    async def start(self) -> None:
        """Start the snapshot task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="footprint-live-feed")

    async def stop(self) -> None:
        """Stop the snapshot task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        announcements = self.hub.register_live()
        try:
            while True:
                await self._wait(announcements)
                # Announcements carry no figures: however many arrived, one snapshot answers all.
                while not announcements.empty():
                    announcements.get_nowait()
                self._kick.clear()
                if not self._subs:
                    continue
                await self._take()
                await asyncio.sleep(self.min_gap)
        finally:
            self.hub.unregister_live(announcements)

    async def _wait(self, announcements: asyncio.Queue[dict[str, Any]]) -> None:
        waiters = {
            asyncio.create_task(announcements.get()),
            asyncio.create_task(self._kick.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=self.refresh, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            # An announcement taken by a cancelled getter is not lost: a snapshot follows anyway.

    async def _take(self) -> None:
        self._taken_at = time.monotonic()
        self.snapshots += 1
        try:
            message = await self.compute()
        except aioredis.RedisError as e:
            log.warning("live snapshot failed: %s", e)
            message = {"type": "error", "message": f"Redis: {e}"}
        except Exception as e:  # the feed must outlive one bad snapshot
            log.exception("live snapshot failed")
            message = {"type": "error", "message": f"live snapshot failed: {type(e).__name__}"}
        self.text = json.dumps(message)
        self.version += 1
        for sub in self._subs:
            sub.wake.set()
