"""``python -m bench.ua_loop``: how long ``/health`` takes while big batches with new user
agents are posted.

One uvicorn process serves ``api.main:app`` with its lifespan off: no server is needed, the
producer only buffers (nothing listens on its broker address). Each round sends ``--posts``
concurrent ``POST /api/footprints`` of ``--batch`` footprints whose user agents were never seen
before, while ``/health`` is asked every 10 ms; the figure is how long ``/health`` took while the
posts were in flight (p50 and max), next to the same with no posts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import Child, child_env, percentile
from footprint.stack import free_port

AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.{build}.{patch} Safari/537.36"
)


def _batch(size: int, rng: random.Random) -> bytes:
    items = [
        {
            "method": "GET",
            "link": f"/posts/{i % 200}",
            "user_agent": AGENT.format(
                major=rng.randint(90, 140), build=rng.randint(0, 9999), patch=rng.randint(0, 999)
            ),
            "referrer": "https://news.example.com/item?id=1",
        }
        for i in range(size)
    ]
    return json.dumps(items).encode()


async def _health_while(client: httpx.AsyncClient, busy: asyncio.Future[object]) -> list[float]:
    took = []
    while not busy.done():
        started = time.perf_counter()
        r = await client.get("/health")
        r.raise_for_status()
        took.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.01)
    return took


async def _round(base: str, posts: int, batch: int, rng: random.Random) -> dict[str, float]:
    bodies = [_batch(batch, rng) for _ in range(posts)]
    limits = httpx.Limits(max_connections=posts + 1)
    async with (
        httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client,
        httpx.AsyncClient(base_url=base, timeout=120) as prober,
    ):
        idle = asyncio.ensure_future(asyncio.sleep(0.5))
        quiet = await _health_while(prober, idle)
        started = time.perf_counter()
        sends = asyncio.gather(
            *(
                client.post(
                    "/api/footprints", content=b, headers={"content-type": "application/json"}
                )
                for b in bodies
            )
        )
        loaded = await _health_while(prober, sends)
        elapsed = time.perf_counter() - started
        for r in sends.result():
            assert r.status_code == 202, r.text
    return {
        "idle_p50_ms": percentile(quiet, 0.5),
        "loaded_p50_ms": percentile(loaded, 0.5),
        "loaded_max_ms": max(loaded),
        "health_calls": len(loaded),
        "posts_s": elapsed,
    }


async def _wait_up(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base) as client:
        while True:
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    """Start the API, run the rounds, print one line per round."""
    parser = argparse.ArgumentParser(prog="python -m bench.ua_loop", description=__doc__)
    parser.add_argument("--posts", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(
            FOOTPRINT_KAFKA_URL="kafka://127.0.0.1:1",
            FOOTPRINT_POSTGRES_URL="postgresql://x:x@127.0.0.1:1/x",
            FOOTPRINT_CLICKHOUSE_URL="clickhouse://127.0.0.1:1/x",
            FOOTPRINT_REDIS_URL="redis://127.0.0.1:1/0",
            FOOTPRINT_DATA_DIR=tmp,
        )
        argv = [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port)]
        argv += ["--lifespan", "off", "--log-level", "warning", "--no-access-log"]
        child = Child(argv, Path(tmp) / "api.log", env=env)
        try:
            asyncio.run(_wait_up(base))
            rng = random.Random(7)
            for n in range(args.rounds):
                figures = asyncio.run(_round(base, args.posts, args.batch, rng))
                print(
                    f"round {n + 1}: {args.posts} posts x {args.batch} new agents in "
                    f"{figures['posts_s']:.2f} s; /health idle p50 "
                    f"{figures['idle_p50_ms']:.1f} ms, during the posts p50 "
                    f"{figures['loaded_p50_ms']:.1f} ms max {figures['loaded_max_ms']:.1f} ms "
                    f"({figures['health_calls']} calls)"
                )
        finally:
            child.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
