"""``/ws/live``: the live 1m / 5m / 1h windows, pushed whenever the worker updates them.

It shows the same figures as ``GET /api/stats/live`` and needs the same credential, sent like
on ``/ws``: ``Authorization: Bearer``, the subprotocol pair ``bearer, <token>`` (browsers), or
``?token=``; a missing, bad or insufficient one closes the socket with 1008 and the reason.
The socket gets a snapshot on connect, then one after each announcement of the worker
(coalesced, at most ``MAX_PUSHES_PER_SECOND``), and one every ``REFRESH_SECONDS`` without
traffic so that a window rolling over to an empty one is shown too. Every socket of the process
is sent the same snapshot, taken once (``api.live_feed``); sockets are capped per user and in
all (``api.sockets``). Messages::

    {"type": "live", "at": "...", "windows": {"1m": {total, bots, visitors, top_pages,
                                                     top_events, other, start, end}, ...}}
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.auth import ALL_SITES, AuthError, NotAllowed, authorize_stats, websocket_token
from api.live import live_stats
from api.live_feed import LiveFeed
from api.sockets import POLICY_VIOLATION, SocketCaps

__all__ = ["feed_for", "router", "snapshot"]

router = APIRouter(tags=["websocket"])

LIVE_WINDOWS = ("1m", "5m", "1h")
MAX_PUSHES_PER_SECOND = 4
REFRESH_SECONDS = 5.0


async def snapshot(
    redis: aioredis.Redis, top: int, partitions: int, now: datetime | None = None
) -> dict[str, Any]:
    """The ``live`` message: every live window at ``now``."""
    now = now or datetime.now(UTC)
    stats = await asyncio.gather(
        *(live_stats(redis, w, now, top, partitions) for w in LIVE_WINDOWS)
    )
    return {
        "type": "live",
        "at": now.isoformat(),
        "windows": dict(zip(LIVE_WINDOWS, stats, strict=True)),
    }


async def _until_disconnect(ws: WebSocket) -> None:
    # Clients have nothing to say: this only notices the close.
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


def feed_for(app: Any) -> LiveFeed:
    """The process's one live feed, computing the snapshot with the app's Redis and settings."""
    settings = app.state.settings

    async def compute() -> dict[str, Any]:
        return await snapshot(app.state.redis, settings.live_top_n, settings.partitions)

    return LiveFeed(
        app.state.hub, compute, min_gap=1.0 / MAX_PUSHES_PER_SECOND, refresh=REFRESH_SECONDS
    )


@router.websocket("/ws/live")
async def live_socket(ws: WebSocket) -> None:
    """Live window stats, pushed on every update of the worker (see the module docstring)."""
    token, subprotocol = websocket_token(ws)
    try:
        # The live windows count every site together (they are not kept per site): an admin's.
        access = authorize_stats(
            ws.app.state.settings, token, getattr(ws.app.state, "sites", None), site=ALL_SITES
        )
    except (AuthError, NotAllowed) as e:
        # Accept first: a close before accept reaches browsers as a bare 403, without the reason.
        await ws.accept(subprotocol=subprotocol)
        await ws.close(code=POLICY_VIOLATION, reason=str(e))
        return
    feed: LiveFeed = ws.app.state.live_feed
    caps: SocketCaps = ws.app.state.socket_caps
    who = access.who
    refusal = caps.acquire("live", who)
    if refusal is not None:
        await ws.accept(subprotocol=subprotocol)
        await ws.close(code=refusal.code, reason=refusal.reason)
        return
    sub = feed.subscribe()
    receiver: asyncio.Task[None] | None = None
    try:
        await ws.accept(subprotocol=subprotocol)
        receiver = asyncio.create_task(_until_disconnect(ws))
        while True:
            update = asyncio.create_task(sub.next())
            done, _ = await asyncio.wait({update, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                update.cancel()
                break
            await ws.send_text(update.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        feed.unsubscribe(sub)
        caps.release("live", who)
        if receiver is not None:
            receiver.cancel()
