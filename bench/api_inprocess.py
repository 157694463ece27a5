"""What the middleware adds to a request, measured in one process: no server, no network.

The load benchmark's ratio moves by ±0.06 from run to run on a shared 2-core machine, where
wrk, uvicorn and the broker take turns on the same cores. This measure keeps only the app: the
same FastAPI site (``bench.hostapp``) with and without the middleware is called as uvicorn
calls it (an ASGI scope per request, the load generator's paths and user agents), in
alternating rounds, and each round's CPU time is divided by its requests. A tracked round ends
when its producer has delivered every footprint to the broker, so the build of the footprints
and their send are in it, as they are in the server; what uvicorn itself costs per request
(HTTP parsing, the socket write) is not, and is the same with and without the middleware.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from starlette.types import ASGIApp, Message

from bench import hostapp
from bench.loadgen import default_paths
from bench.traffic import USER_AGENTS
from footprint.producer import FootprintProducer

__all__ = ["cost_per_request"]


def _scopes(n: int) -> list[dict[str, Any]]:
    paths = default_paths()
    scopes = []
    for i in range(n):
        path, _, query = paths[i % len(paths)].partition("?")
        agent = USER_AGENTS[i % len(USER_AGENTS)].encode()
        scopes.append(
            {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": query.encode(),
                "headers": [
                    (b"host", b"127.0.0.1:8000"),
                    (b"user-agent", agent),
                    (b"accept", b"*/*"),
                ],
                "client": ("127.0.0.1", 40000 + i % 1000),
                "server": ("127.0.0.1", 8000),
            }
        )
    return scopes


async def _drive(app: ASGIApp, scopes: list[dict[str, Any]]) -> None:
    request: Message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        pass

    for scope in scopes:
        await app({**scope, "state": {}}, receive, send)
        # Back to the event loop after each request, as a server's loop goes between requests:
        # the producer's tasks then run between requests too, and build in batches of the
        # size they have in a server (run back to back, the middleware cost ~40 % less).
        await asyncio.sleep(0)


async def _measure(
    bootstrap: str, topic: str, requests: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    producer = FootprintProducer(bootstrap, topic)
    apps = {"plain": hostapp.plain(), "tracked": hostapp.tracked(producer=producer)}
    scopes = _scopes(requests)
    await producer.start()
    tracked = 0  # requests the tracked site served, each a footprint to deliver
    try:
        for app in apps.values():  # warm-up: routes compiled, caches filled, connection made
            await _drive(app, scopes[: requests // 5])
        tracked += requests // 5
        await producer.flush(30)
        per_request: dict[str, list[float]] = {name: [] for name in apps}
        for r in range(rounds):
            order = ("plain", "tracked") if r % 2 else ("tracked", "plain")
            for name in order:
                began = time.process_time()
                await _drive(apps[name], scopes)
                if name == "tracked":
                    await producer.flush(30)
                    tracked += requests
                per_request[name].append((time.process_time() - began) / requests * 1e6)
        stats = producer.stats
        delivery = {"requests_tracked": tracked, "offered": stats.offered}
        return per_request, {**delivery, "delivered": stats.delivered}
    finally:
        await producer.stop()


def cost_per_request(
    bootstrap: str, topic: str, requests: int = 10_000, rounds: int = 6
) -> dict[str, Any]:
    """CPU µs per request of the site with and without the middleware (medians of ``rounds``
    alternating rounds), what the middleware adds, and the ratio of the two."""
    per_request, delivery = asyncio.run(_measure(bootstrap, topic, requests, rounds))
    plain = statistics.median(per_request["plain"])
    tracked = statistics.median(per_request["tracked"])
    return {
        "requests_per_round": requests,
        "rounds": rounds,
        "plain_us": round(plain, 2),
        "tracked_us": round(tracked, 2),
        "added_us": round(tracked - plain, 2),
        "ratio": round(plain / tracked, 4),
        "rounds_us": {name: [round(v, 2) for v in values] for name, values in per_request.items()},
        # Every tracked request's footprint, acknowledged by the broker before its round ended.
        **delivery,
    }
