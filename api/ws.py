"""``/ws``: the live notification inbox of the token's user.

On connect the socket is sent the unread notifications (nothing is consumed: a second tab or a
reconnect sees them too), then live ones. A client reconnecting with ``?last_id=N`` receives
everything after N from PostgreSQL, in order; ids are stable, so nothing arrives twice. Every
message carries the user's unread count. The token comes as ``Authorization: Bearer``, as the
subprotocol pair ``bearer, <token>``, or as ``?token=`` (browsers); it is removed from the
request before anything can log it. A missing or bad token closes the socket with 1008; so
does a user's socket beyond ``FOOTPRINT_WS_MAX_PER_USER``, and one beyond
``FOOTPRINT_WS_MAX_TOTAL`` in the process closes with 1013 (``api.sockets``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api import inbox
from api.auth import AuthError, User, verify_token, websocket_token
from api.hub import Hub
from api.sockets import POLICY_VIOLATION, SocketCaps

router = APIRouter(tags=["websocket"])


async def _until_disconnect(ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await ws.receive_text()
            if message == "ping":
                await ws.send_json({"type": "pong"})


class _Sender:
    """Sends notifications in id order, each at most once."""

    def __init__(self, ws: WebSocket, last_sent: int) -> None:
        self.ws = ws
        self.last_sent = last_sent

    async def notification(self, n: dict[str, Any], unread_count: int) -> None:
        if n["id"] <= self.last_sent:
            return
        await self.ws.send_json(
            {"type": "notification", "id": n["id"], "notification": n, "unread_count": unread_count}
        )
        self.last_sent = n["id"]


@router.websocket("/ws")
async def notifications_socket(ws: WebSocket) -> None:
    """Live notifications of the token's user (see the module docstring)."""
    app = ws.app
    token, subprotocol = websocket_token(ws)
    last_id_raw = ws.query_params.get("last_id")
    try:
        user: User = verify_token(app.state.settings, token)
        last_id = int(last_id_raw) if last_id_raw is not None else None
        if last_id is not None and last_id < 0:
            raise ValueError
    except (AuthError, ValueError) as e:
        reason = str(e) if isinstance(e, AuthError) else "last_id must be a non-negative integer"
        await ws.accept(subprotocol=subprotocol)
        await ws.close(code=POLICY_VIOLATION, reason=reason)
        return

    caps: SocketCaps = app.state.socket_caps
    refusal = caps.acquire("inbox", user.id)
    if refusal is not None:
        await ws.accept(subprotocol=subprotocol)
        await ws.close(code=refusal.code, reason=refusal.reason)
        return
    hub: Hub = app.state.hub
    pool = app.state.postgres
    queue = hub.register(user.id)  # before reading the backlog, so nothing falls in between
    receiver: asyncio.Task[None] | None = None
    try:
        await ws.accept(subprotocol=subprotocol)
        count = await inbox.unread_count(pool, user.id)
        if last_id is None:
            backlog = await inbox.unread(pool, user.id)
            sender = _Sender(ws, 0)
            newest = await inbox.newest_id(pool, user.id)
        else:
            backlog = await inbox.after(pool, user.id, last_id)
            sender = _Sender(ws, last_id)
            newest = 0
        await ws.send_json({"type": "hello", "user": user.id, "unread_count": count})
        for n in backlog:
            await sender.notification(n, count)
        sender.last_sent = max(sender.last_sent, newest)

        receiver = asyncio.create_task(_until_disconnect(ws))
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                break
            item = getter.result()
            if item["type"] == "resync":
                count = await inbox.unread_count(pool, user.id)
                for n in await inbox.after(pool, user.id, sender.last_sent):
                    await sender.notification(n, count)
            elif item.get("notification") is None:
                await ws.send_json({"type": "unread_count", "unread_count": item["unread_count"]})
            else:
                await sender.notification(item["notification"], item["unread_count"])
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unregister(user.id, queue)
        caps.release("inbox", user.id)
        if receiver is not None:
            receiver.cancel()
