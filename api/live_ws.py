"""``/ws/live``: the live 1m / 5m / 1h windows, pushed whenever the worker updates them.

It shows the same figures as ``GET /api/stats/live`` and needs the same credential, sent like
on ``/ws``: ``Authorization: Bearer``, the subprotocol pair ``bearer, <token>`` (browsers), or
``?token=``; a missing, bad or insufficient one closes the socket with 1008 and the reason.
The socket gets a snapshot on connect, then one after each announcement of the worker
(coalesced, at most ``MAX_PUSHES_PER_SECOND``), and one every ``REFRESH_SECONDS`` without
traffic so that a window rolling over to an empty one is shown too. Messages::

    {"type": "live", "at": "...", "windows": {"1m": {total, visitors, top_pages, start, end}, ...}}
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.auth import AuthError, NotAllowed, authorize_stats, websocket_token
from api.hub import Hub
from api.live import live_stats
from api.ws import POLICY_VIOLATION

__all__ = ["router", "snapshot"]

log = logging.getLogger(__name__)

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


def _drain(queue: asyncio.Queue[dict[str, Any]]) -> None:
    # Announcements carry no figures: however many arrived, one fresh snapshot answers them all.
    while not queue.empty():
        queue.get_nowait()


@router.websocket("/ws/live")
async def live_socket(ws: WebSocket) -> None:
    """Live window stats, pushed on every update of the worker (see the module docstring)."""
    token, subprotocol = websocket_token(ws)
    try:
        authorize_stats(ws.app.state.settings, token)
    except (AuthError, NotAllowed) as e:
        # Accept first: a close before accept reaches browsers as a bare 403, without the reason.
        await ws.accept(subprotocol=subprotocol)
        await ws.close(code=POLICY_VIOLATION, reason=str(e))
        return
    hub: Hub = ws.app.state.hub
    redis: aioredis.Redis = ws.app.state.redis
    top: int = ws.app.state.settings.live_top_n
    partitions: int = ws.app.state.settings.partitions
    queue = hub.register_live()  # before the first snapshot, so no update falls in between
    receiver: asyncio.Task[None] | None = None
    try:
        await ws.accept(subprotocol=subprotocol)
        receiver = asyncio.create_task(_until_disconnect(ws))
        min_gap = 1.0 / MAX_PUSHES_PER_SECOND
        while True:
            sent_at = time.monotonic()
            try:
                await ws.send_json(await snapshot(redis, top, partitions))
            except aioredis.RedisError as e:
                log.warning("live snapshot failed: %s", e)
                await ws.send_json({"type": "error", "message": f"Redis: {e}"})
            # Throttle: updates arriving during the gap are folded into the next snapshot.
            gap = min_gap - (time.monotonic() - sent_at)
            if gap > 0:
                await asyncio.wait({receiver}, timeout=gap)
            if receiver.done():
                break
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait(
                {getter, receiver}, timeout=REFRESH_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            getter.cancel()
            if receiver in done:
                break
            _drain(queue)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unregister_live(queue)
        if receiver is not None:
            receiver.cancel()
