"""``/ws/live`` on ``footprint run``: posted footprints reach the socket within seconds."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.integration.conftest import (
    BIN,
    admin_headers,
    free_port,
    wait_for_minute_room,
    wait_http,
)

pytestmark = pytest.mark.integration


async def _live_until(
    url: str, base: str, links: list[str], timeout: float
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    async with connect(url, additional_headers=admin_headers()) as ws:
        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        async with httpx.AsyncClient(base_url=base) as api:
            body = [{"method": "GET", "link": link} for link in links]
            assert (await api.post("/api/footprints", json=body)).status_code == 202
        deadline = time.monotonic() + timeout
        while messages[-1]["windows"]["1m"]["total"] < len(links):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"1m total never reached {len(links)}: {messages[-1]}")
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
    return messages


def test_live_socket_sees_posted_footprints(env: dict[str, str], spawn) -> None:
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)

    wait_for_minute_room()
    links = ["/pricing"] * 3 + ["/blog/kafka"] * 2
    messages = asyncio.run(_live_until(f"ws://127.0.0.1:{port}/ws/live", base, links, 60))

    first, last = messages[0], messages[-1]
    assert first["type"] == "live" and set(first["windows"]) == {"1m", "5m", "1h"}
    assert first["windows"]["1m"]["total"] == 0
    for window in ("1m", "5m", "1h"):
        stats = last["windows"][window]
        assert stats["total"] == 5
        assert stats["visitors"] == 1  # one client, one visitor id
        assert stats["top_pages"] == [
            {"link": "/pricing", "count": 3},
            {"link": "/blog/kafka", "count": 2},
        ]
    assert last["windows"]["1m"]["start"] <= last["at"] < last["windows"]["1m"]["end"]
