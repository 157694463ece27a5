"""``/ws/live`` without servers: a real uvicorn and hub, Redis replaced by a counting stub.

Announcements are injected into the hub as its Redis subscription would deliver them, on the
server's own event loop.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from api import live_ws
from api.auth import mint_token
from api.hub import Hub
from api.sockets import SocketCaps
from footprint.keys import LIVE_CHANNEL
from footprint.settings import load_settings
from footprint.stack import free_port

SETTINGS = load_settings(jwt_secret="unit-tests-secret-0123456789abcdef")
ADMIN = mint_token(SETTINGS, "admin", admin=True)


def bearer(token: str) -> list[Subprotocol]:
    """The subprotocols a browser sends its token in."""
    return [Subprotocol("bearer"), Subprotocol(token)]


class FakeStats:
    """Stands in for ``api.live.live_stats``: every call sees one more footprint."""

    def __init__(self) -> None:
        self.total = 0

    async def __call__(
        self, redis: Any, window: str, at: datetime, top: int, partitions: int
    ) -> dict[str, Any]:
        return {"window": window, "total": self.total, "visitors": 1, "top_pages": []}


def _announce(hub: Hub) -> None:
    data = json.dumps({"windows": [["1m", 0]]})
    hub._dispatch({"type": "message", "channel": LIVE_CHANNEL.encode(), "data": data})


async def _serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    return server, task, f"ws://127.0.0.1:{port}/ws/live"


def _app() -> tuple[FastAPI, Hub]:
    app = FastAPI()
    app.include_router(live_ws.router)
    hub = Hub("redis://127.0.0.1:1/0")  # never started: announcements are injected
    app.state.hub, app.state.redis = hub, object()
    app.state.settings = SETTINGS
    app.state.socket_caps = SocketCaps(per_user=100, total=1000)
    app.state.live_feed = live_ws.feed_for(app)
    return app, hub


def test_live_socket_snapshots_on_connect_throttles_and_unregisters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stats = FakeStats()
    monkeypatch.setattr(live_ws, "live_stats", stats)

    async def scenario() -> None:
        app, hub = _app()
        feed = app.state.live_feed
        await feed.start()
        server, task, url = await _serve(app)
        try:
            async with connect(url, subprotocols=bearer(ADMIN)) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert first["type"] == "live"
                assert set(first["windows"]) == {"1m", "5m", "1h"}
                assert feed.sockets == 1

                # 100 announcements over a second: about 4 pushes a second, the last up to date.
                received: list[dict[str, Any]] = []
                loop = asyncio.get_running_loop()
                started = loop.time()
                for _ in range(100):
                    stats.total += 1
                    _announce(hub)
                    await asyncio.sleep(0.01)
                while not received or received[-1]["windows"]["1m"]["total"] < 100:
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), 3)))
                elapsed = loop.time() - started
                assert 2 <= len(received) <= live_ws.MAX_PUSHES_PER_SECOND * elapsed + 2, (
                    len(received),
                    elapsed,
                )
            for _ in range(100):
                if not feed.sockets:
                    break
                await asyncio.sleep(0.02)
            assert not feed.sockets, "a closed socket must unsubscribe"
            assert not app.state.socket_caps.open, "and be uncounted"
        finally:
            server.should_exit = True
            await task
            await feed.stop()

    asyncio.run(scenario())


def test_one_snapshot_per_update_is_sent_to_every_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    stats = FakeStats()
    calls: list[float] = []

    async def counted(*args: Any) -> dict[str, Any]:
        calls.append(asyncio.get_running_loop().time())
        return await stats(*args)

    monkeypatch.setattr(live_ws, "live_stats", counted)
    monkeypatch.setattr(live_ws, "REFRESH_SECONDS", 60.0)  # only announcements take snapshots

    async def scenario() -> None:
        app, hub = _app()
        feed = app.state.live_feed
        await feed.start()
        server, task, url = await _serve(app)
        try:
            sockets = [await connect(url, subprotocols=bearer(ADMIN)) for _ in range(20)]
            # A burst of connections shares the first snapshot: one, not twenty.
            firsts = [await asyncio.wait_for(ws.recv(), 5) for ws in sockets]
            assert feed.snapshots == 1 and len(set(firsts)) == 1
            stats.total = 42
            _announce(hub)
            updates = [await asyncio.wait_for(ws.recv(), 5) for ws in sockets]
            assert len(set(updates)) == 1, "every socket gets the same bytes"
            assert json.loads(updates[0])["windows"]["1m"]["total"] == 42
            assert feed.snapshots == 2
            assert len(calls) == 2 * len(live_ws.LIVE_WINDOWS)  # one live_stats per window
            for ws in sockets:
                await ws.close()
        finally:
            server.should_exit = True
            await task
            await feed.stop()

    asyncio.run(scenario())


def test_one_message_can_carry_many_deliveries_and_the_old_form_still_reads() -> None:
    from footprint.inbox import deliveries, unpack_deliveries

    n = {"id": 7, "user": "ann"}
    packed = json.loads(deliveries([(n, "ann", 2), (None, "bob", 0)]))
    assert unpack_deliveries(packed) == [
        {"user": "ann", "notification": n, "unread_count": 2},
        {"user": "bob", "notification": None, "unread_count": 0},
    ]
    single = {"user": "ann", "notification": n, "unread_count": 1}
    assert unpack_deliveries(single) == [single]


def test_live_socket_needs_a_stats_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_ws, "live_stats", FakeStats())

    async def outcome(url: str, protocols: list[Subprotocol] | None = None) -> str:
        async with connect(url, subprotocols=protocols) as ws:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            except ConnectionClosed as e:
                return (
                    f"closed {e.rcvd.code if e.rcvd else None}: {e.rcvd.reason if e.rcvd else ''}"
                )
            return str(message["type"])

    async def scenario() -> dict[str, str]:
        app, _ = _app()
        feed = app.state.live_feed
        await feed.start()
        server, task, url = await _serve(app)
        try:
            return {
                "anonymous": await outcome(url),
                "garbage": await outcome(url, bearer("not-a-jwt")),
                "user": await outcome(url, bearer(mint_token(SETTINGS, "alice"))),
                "expired": await outcome(
                    url, bearer(mint_token(SETTINGS, "a", admin=True, ttl=-9))
                ),
                "admin (subprotocol)": await outcome(url, bearer(ADMIN)),
                "admin (?token=)": await outcome(f"{url}?token={ADMIN}"),
            }
        finally:
            server.should_exit = True
            await task
            await feed.stop()

    got = asyncio.run(scenario())
    assert got == {
        "anonymous": "closed 1008: missing token",
        "garbage": "closed 1008: invalid token: DecodeError",
        "user": "closed 1008: reading stats needs a site API key or an admin token: "
        "footprint token --admin NAME",
        "expired": "closed 1008: token expired",
        "admin (subprotocol)": "live",
        "admin (?token=)": "live",
    }
