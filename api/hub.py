"""One Redis subscription per API process, feeding every WebSocket of the process.

Notifications are routed to the queues of their user's sockets (every open tab); live-stats
announcements go to the live feed (``api.live_feed``), which takes one snapshot for every
live-stats socket. When the subscription drops (Redis restarted) the
hub reconnects and tells each notification socket to catch up from PostgreSQL, so nothing
published meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis

from footprint.inbox import unpack_deliveries
from footprint.keys import LIVE_CHANNEL, NOTIFICATIONS_CHANNEL

__all__ = ["Hub", "RESYNC"]

log = logging.getLogger(__name__)

RESYNC: dict[str, Any] = {"type": "resync"}
QUEUE_SIZE = 1000


class Hub:
    """Fan-out from Redis pub/sub to per-connection queues."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._users: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._live: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.deliveries = 0

    # --- connections ---
    def register(self, user_id: str) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving this user's notifications (one per socket)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._users[user_id].add(queue)
        return queue

    def unregister(self, user_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Forget a socket's queue."""
        queues = self._users.get(user_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._users[user_id]

    def register_live(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving live-stats announcements (the live feed's)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._live.add(queue)
        return queue

    def unregister_live(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Forget a live-stats announcements queue."""
        self._live.discard(queue)

    @property
    def sockets(self) -> int:
        """Open notification sockets in this process."""
        return sum(len(q) for q in self._users.values())

    # --- the subscription ---
    async def start(self) -> None:
        """Start the subscriber task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="footprint-hub")

    async def stop(self) -> None:
        """Stop the subscriber task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            client = aioredis.from_url(
                self.redis_url, socket_connect_timeout=5, health_check_interval=5
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(NOTIFICATIONS_CHANNEL, LIVE_CHANNEL)
                self.connected.set()
                backoff = 0.1
                if not first:
                    self._broadcast_resync()
                first = False
                async for message in pubsub.listen():
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("hub subscription lost (%s); reconnecting", e)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        try:
            data = json.loads(message["data"])
        except (TypeError, ValueError):
            return
        if channel == NOTIFICATIONS_CHANNEL:
            for item in unpack_deliveries(data):
                for queue in list(self._users.get(item.get("user", ""), ())):
                    self._put(queue, {"type": "notification", **item})
        elif channel == LIVE_CHANNEL:
            for queue in list(self._live):
                self._put(queue, {"type": "live", **data})

    def _put(self, queue: asyncio.Queue[dict[str, Any]], item: dict[str, Any]) -> None:
        try:
            queue.put_nowait(item)
            self.deliveries += 1
        except asyncio.QueueFull:
            # A slow socket: drop its backlog and let it catch up from PostgreSQL.
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(RESYNC)

    def _broadcast_resync(self) -> None:
        for queues in self._users.values():
            for queue in queues:
                self._put(queue, RESYNC)
