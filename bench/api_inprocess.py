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
from bench.common import schedstat
from bench.loadgen import default_paths
from bench.traffic import USER_AGENTS
from footprint.delivery_process import DeliveryProcess
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


def _child_cpu(process: DeliveryProcess) -> float:
    """Seconds the delivery process has run on a CPU so far."""
    pid = process.pid
    ran = schedstat(pid) if pid is not None else None
    return ran[0] if ran is not None else float("nan")


async def _measure(
    bootstrap: str, topic: str, requests: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    producer = FootprintProducer(bootstrap, topic)
    # The same middleware with FOOTPRINT_DELIVERY_PROCESS: its child's CPU is counted apart.
    process = DeliveryProcess(bootstrap, topic)
    apps = {
        "plain": hostapp.plain(),
        "tracked": hostapp.tracked(producer=producer),
        "process": hostapp.tracked(producer=process),
    }
    producers = {"tracked": producer, "process": process}
    scopes = _scopes(requests)
    await producer.start()
    await process.start()
    served = dict.fromkeys(producers, 0)  # requests each tracked site served: a footprint each
    try:
        for name, app in apps.items():  # warm-up: routes compiled, caches filled, connected
            await _drive(app, scopes[: requests // 5])
            if name in served:
                served[name] += requests // 5
        for p in producers.values():
            await p.flush(30)
        per_request: dict[str, list[float]] = {name: [] for name in [*apps, "process_child"]}
        for r in range(rounds):
            order = list(apps) if r % 2 else list(reversed(apps))
            for name in order:
                child = _child_cpu(process)
                began = time.process_time()
                await _drive(apps[name], scopes)
                if name in producers:
                    await producers[name].flush(30)
                    served[name] += requests
                per_request[name].append((time.process_time() - began) / requests * 1e6)
                if name == "process":
                    ran = _child_cpu(process) - child
                    per_request["process_child"].append(ran / requests * 1e6)
        delivery = {
            "requests_tracked": served["tracked"],
            "offered": producer.stats.offered,
            "delivered": producer.stats.delivered,
            "requests_process": served["process"],
            "delivered_process": process.stats.delivered,
        }
        return per_request, delivery
    finally:
        await producer.stop()
        await process.stop()


def cost_per_request(
    bootstrap: str, topic: str, requests: int = 10_000, rounds: int = 6
) -> dict[str, Any]:
    """CPU µs per request of the site with and without the middleware (medians of ``rounds``
    alternating rounds), what the middleware adds, and the ratio of the two."""
    per_request, delivery = asyncio.run(_measure(bootstrap, topic, requests, rounds))
    plain = statistics.median(per_request["plain"])
    tracked = statistics.median(per_request["tracked"])
    process = statistics.median(per_request["process"])
    child = statistics.median(per_request["process_child"])
    return {
        "requests_per_round": requests,
        "rounds": rounds,
        "plain_us": round(plain, 2),
        "tracked_us": round(tracked, 2),
        "added_us": round(tracked - plain, 2),
        "ratio": round(plain / tracked, 4),
        # With a delivery process: what stays in the API process, and what the child adds.
        "process_us": round(process, 2),
        "process_added_us": round(process - plain, 2),
        "process_ratio": round(plain / process, 4),
        "process_child_us": round(child, 2),
        "rounds_us": {name: [round(v, 2) for v in values] for name, values in per_request.items()},
        # Every tracked request's footprint, acknowledged by the broker before its round ended.
        **delivery,
    }
