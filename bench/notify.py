"""Notifications: community action → WebSocket delivery latency, and a large fan-out.

The worker (``faust -A streams.app worker -l info``) and the API (``uvicorn api.main:app``) run
on the shared stack with their own database, Redis db and topics; the load comes from this
process.

1. *Latency*: R recipients each hold a WebSocket on ``/ws``. ``follow_user`` events, each to one
   recipient, are published with ``api.notify.NotificationPublisher`` (what the community API
   calls) at a fixed rate, open loop: each is sent when due, without waiting for the previous
   one. Latency is from just before ``publish`` to the WebSocket message carrying that event,
   on the same clock. Goal: p99 < 50 ms at 500 events/s.
2. *Fan-out*: an author with F followers (10,000 at full size) posts once. Measured: until every
   follower's notification is published on Redis (a subscriber counts them), and until each of
   S followers holding a WebSocket received it. Goal: all within 2 s.
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from api.auth import mint_token
from api.notify import NotificationPublisher
from bench.batching import compare
from bench.common import (
    BENCH_JWT_SECRET,
    Child,
    ChildExited,
    CpuWindow,
    Output,
    Progress,
    Stack,
    child_env,
    loadavg,
    percentile,
    tag,
    uvicorn,
    wait_until,
)
from bench.worker import faust_worker_argv
from footprint.inbox import unpack_deliveries
from footprint.kafka_admin import TopicSpec, ensure_topics
from footprint.keys import NOTIFICATIONS_CHANNEL
from footprint.settings import load_settings
from footprint.stack import free_port
from schemas.community import CreatePost, FollowUser

__all__ = ["run"]

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "rate": 50.0,
        "seconds": 2.0,
        "warmup": 0.5,
        "recipients": 10,
        "followers": 200,
        "sockets": 20,
    },
    "small": {
        "rate": 500.0,
        "seconds": 5.0,
        "warmup": 3.0,
        "recipients": 100,
        "followers": 2000,
        "sockets": 100,
    },
    "full": {
        "rate": 500.0,
        "seconds": 10.0,
        "warmup": 10.0,
        "recipients": 200,
        "followers": 10_000,
        "sockets": 200,
    },
}


class Socket:
    """One browser tab: records when each notification (by event id) arrived."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.arrivals: dict[str, float] = {}
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                now = time.perf_counter()
                message = json.loads(raw)
                if message.get("type") == "notification":
                    event_id = message["notification"]["payload"]["event_id"]
                    self.arrivals.setdefault(event_id, now)
        except Exception:  # closed at the end of the run
            return

    async def close(self) -> None:
        await self.conn.close()
        self._task.cancel()


async def _open(ws_url: str, user: str, token: str) -> Socket:
    conn = await connect(
        ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=60
    )
    first = json.loads(await conn.recv())
    if first.get("type") != "hello":
        raise RuntimeError(f"{user}: expected hello, got {first}")
    return Socket(conn)


async def _open_many(ws_url: str, users: list[str], tokens: dict[str, str]) -> list[Socket]:
    sockets: list[Socket] = []
    for i in range(0, len(users), 50):
        chunk = users[i : i + 50]
        sockets += await asyncio.gather(*(_open(ws_url, u, tokens[u]) for u in chunk))
    return sockets


class RedisArrivals:
    """When each delivery, by (event id, user), was published on Redis (the worker's last
    step)."""

    def __init__(self, redis_url: str) -> None:
        self.client = aioredis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.arrivals: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.pubsub.subscribe(NOTIFICATIONS_CHANNEL)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            now = time.perf_counter()
            for item in unpack_deliveries(json.loads(message["data"])):
                eid = ((item.get("notification") or {}).get("payload") or {}).get("event_id")
                if eid:
                    self.arrivals.setdefault((eid, item.get("user", "")), now)

    def of(self, event_id: str) -> list[float]:
        """When each of an event's deliveries was published."""
        return [t for (eid, _), t in self.arrivals.items() if eid == event_id]

    async def wait(self, event_id: str, deliveries: int, timeout: float) -> None:
        """Until ``deliveries`` of the event were published, or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.of(event_id)) < deliveries:  # noqa: ASYNC110 - the reader task fills arrivals
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.pubsub.aclose()
        await self.client.aclose()


def _quantiles(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.50), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
    }


async def latency(
    bootstrap: str, topic: str, ws_url: str, tokens: dict[str, str], recipients: list[str],
    rate: float, seconds: float, progress: Progress, redis_url: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Open-loop follow_user events at ``rate``; delivery latency per event, and with
    ``redis_url`` where it went: until the broker acknowledged the publish, until the worker
    published the delivery on Redis, and from there to the WebSocket."""
    sockets = await _open_many(ws_url, recipients, tokens)
    by_user = dict(zip(recipients, sockets, strict=True))
    on_redis = RedisArrivals(redis_url) if redis_url else None
    if on_redis is not None:
        await on_redis.start()
    publisher = NotificationPublisher(bootstrap, topic)
    await publisher.start()
    sent: dict[str, tuple[str, float]] = {}
    acked: dict[str, float] = {}
    tasks: list[asyncio.Task[None]] = []

    async def publish(event: FollowUser) -> None:
        await publisher.publish(event)
        acked[str(event.event_id)] = time.perf_counter()

    n = int(rate * seconds)
    began = time.perf_counter()
    try:
        for i in range(n):
            due = began + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = FollowUser(
                actor_id=f"bench-actor-{i}", followed_id=recipients[i % len(recipients)]
            )
            sent[str(event.event_id)] = (event.followed_id, time.perf_counter())
            tasks.append(asyncio.create_task(publish(event)))
        await asyncio.gather(*tasks)
        send_seconds = time.perf_counter() - began
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = sum(1 for eid, (u, _) in sent.items() if eid in by_user[u].arrivals)
            if got == len(sent):
                break
            await asyncio.sleep(0.05)
    finally:
        await publisher.stop()
        if on_redis is not None:
            await on_redis.close()
        for s in sockets:
            await s.close()
    lat = [
        (by_user[u].arrivals[eid] - t) * 1000
        for eid, (u, t) in sent.items()
        if eid in by_user[u].arrivals
    ]
    result = {
        "rate": rate,
        "seconds": seconds,
        "sent": len(sent),
        "delivered": len(lat),
        "achieved_rate": round(len(sent) / send_seconds, 1),
        "p50_ms": round(percentile(lat, 0.50), 2),
        "p90_ms": round(percentile(lat, 0.90), 2),
        "p99_ms": round(percentile(lat, 0.99), 2),
        "max_ms": round(max(lat), 2) if lat else None,
        "recipients": len(recipients),
    }
    if on_redis is not None:
        # Hop by hop, each from the event's own start, for the events delivered.
        hops: dict[str, list[float]] = {"acked": [], "on_redis": [], "redis_to_socket": []}
        for eid, (u, t) in sent.items():
            socket_at, redis_at = by_user[u].arrivals.get(eid), on_redis.arrivals.get((eid, u))
            if socket_at is None or redis_at is None or eid not in acked:
                continue
            hops["acked"].append((acked[eid] - t) * 1000)
            hops["on_redis"].append((redis_at - t) * 1000)
            hops["redis_to_socket"].append((socket_at - redis_at) * 1000)
        result["hops"] = {name: _quantiles(values) for name, values in hops.items()}
        result["hops_events"] = len(hops["acked"])
    progress(
        f"latency at {rate:g}/s: {result['delivered']}/{result['sent']} delivered, "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms"
    )
    return result


async def fanout(
    bootstrap: str, topic: str, ws_url: str, redis_url: str, tokens: dict[str, str],
    author: str, followers: list[str], watched: list[str], progress: Progress,
) -> dict[str, Any]:  # fmt: skip
    """One post by ``author``: time until every follower's notification is out."""
    sockets = await _open_many(ws_url, watched, tokens)
    on_redis = RedisArrivals(redis_url)
    await on_redis.start()
    event = CreatePost(actor_id=author, post_id=1, title="Hello followers")
    eid = str(event.event_id)
    publisher = NotificationPublisher(bootstrap, topic)
    await publisher.start()
    try:
        began = time.perf_counter()
        await publisher.publish(event)
        await on_redis.wait(eid, len(followers), timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(eid in s.arrivals for s in sockets):  # noqa: ASYNC110 - polling other tasks' results
            await asyncio.sleep(0.02)
    finally:
        await publisher.stop()
        await on_redis.close()
        for s in sockets:
            await s.close()
    published = on_redis.of(eid)
    socket_times = [s.arrivals[eid] - began for s in sockets if eid in s.arrivals]
    result = {
        "followers": len(followers),
        "published": len(published),
        "all_published_s": round(max(published) - began, 3) if published else None,
        "sockets": len(sockets),
        "sockets_delivered": len(socket_times),
        "last_socket_s": round(max(socket_times), 3) if socket_times else None,
        "first_socket_s": round(min(socket_times), 3) if socket_times else None,
    }
    progress(
        f"fan-out to {len(followers):,}: {result['published']:,} published on Redis, "
        f"the last after {result['all_published_s']} s; {result['sockets_delivered']}/"
        f"{result['sockets']} sockets, the last after {result['last_socket_s']} s"
    )
    return result


def _seed(postgres_url: str, author: str, followers: list[str], recipients: list[str]) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy("COPY users (id) FROM STDIN") as copy:
            for user in [author, *followers, *recipients]:
                copy.write_row((user,))
        with cur.copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for follower in followers:
                copy.write_row((follower, author))


def run(stack: Stack, size: str, out: Output, workdir: Path) -> dict[str, Any]:
    """Run the notifications benchmark; print and return its figures."""
    progress = Progress("notify")
    cfg = SIZES[size]
    t = tag()
    db = f"bench_notify_{t}"
    topic = f"bench-notifications-{t}"
    postgres_url = stack.postgres_db(db)
    redis_url = stack.redis_db()
    asyncio.run(
        ensure_topics(
            stack.kafka.bootstrap,
            [TopicSpec(topic, 4), TopicSpec(f"{topic}-dead-letter", 1)],
        )
    )
    env = child_env(
        FOOTPRINT_KAFKA_URL=stack.kafka.url,
        FOOTPRINT_POSTGRES_URL=postgres_url,
        FOOTPRINT_CLICKHOUSE_URL=stack.clickhouse_db(db),
        FOOTPRINT_REDIS_URL=redis_url,
        FOOTPRINT_NOTIFICATIONS_TOPIC=topic,
        FOOTPRINT_NOTIFICATIONS_DEAD_LETTER_TOPIC=f"{topic}-dead-letter",
        FOOTPRINT_FOOTPRINTS_TOPIC=f"bench-notify-footprints-{t}",
        FOOTPRINT_APP_ID=f"bench-notify-{t}",
        FOOTPRINT_DATA_DIR=str(workdir / f"data-{t}"),
    )
    author = f"author-{t}"
    followers = [f"follower-{t}-{i}" for i in range(cfg["followers"])]
    recipients = [f"recipient-{t}-{i}" for i in range(cfg["recipients"])]
    _seed(postgres_url, author, followers, recipients)
    progress(f"seeded {len(followers):,} followers of {author} and {len(recipients)} recipients")
    settings = load_settings(jwt_secret=BENCH_JWT_SECRET)
    watched = followers[:: max(1, len(followers) // cfg["sockets"])][: cfg["sockets"]]
    tokens = {u: mint_token(settings, u) for u in [*recipients, *watched]}
    reader = mint_token(settings, "bench-admin", admin=True)

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    ws_url = f"ws://127.0.0.1:{port}/ws"
    worker = Child(
        faust_worker_argv("streams.app"), workdir / f"notify-worker-{t}.log", env=env, cwd=workdir
    )
    api = uvicorn("api.main:app", port, workdir / f"notify-api-{t}.log", env)
    try:
        import httpx

        def ready() -> bool | None:
            for child, name in ((worker, "worker"), (api, "API")):
                if not child.alive():
                    raise ChildExited(f"the {name} exited:\n{child.tail()}")
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                status = httpx.get(
                    f"http://127.0.0.1:{port}/api/stream/status",
                    headers={"Authorization": f"Bearer {reader}"},  # a stats credential
                    timeout=2,
                )
            except httpx.HTTPError:
                return None
            workers = status.json().get("workers", []) if status.status_code == 200 else []
            return True if health.status_code == 200 and workers else None

        wait_until(ready, timeout=120, what="the API and a worker")
        progress("API and worker up")
        # Warm-up at the measured rate: the first events pay for connections and the worker's
        # first batch, and a broker just started compiles its hot paths (Apache Kafka's JVM
        # takes 75-100 % of a core for its first ~20 s at this load, ~25 % after).
        at_rate = partial(
            latency, stack.kafka.bootstrap, topic, ws_url, tokens, recipients, cfg["rate"]
        )
        asyncio.run(at_rate(cfg["warmup"], progress))
        cpu_worker, cpu_api = CpuWindow(worker.pid), CpuWindow(api.pid)
        lat = asyncio.run(at_rate(cfg["seconds"], progress, redis_url))
        lat["warmup_seconds"] = cfg["warmup"]
        lat["worker_cpu"], lat["api_cpu"] = cpu_worker.result(), cpu_api.result()
        lat["load_average"] = loadavg()
        fan = asyncio.run(
            fanout(
                stack.kafka.bootstrap,
                topic,
                ws_url,
                redis_url,
                tokens,
                author,
                followers,
                watched,
                progress,
            )  # fmt: skip
        )
    finally:
        api.stop()
        worker.stop()
        stack.drop_postgres_db(db)
        stack.drop_clickhouse_db(db)
    # The agent's batching policy alone, in this process, once the servers are gone.
    batching = compare(cfg["rate"], size)
    progress(
        "batching alone: "
        + "; ".join(
            f"{key} p50 {p['p50_ms']:.1f} / p99 {p['p99_ms']:.1f} ms, {p['passes_per_s']:.0f} "
            f"passes/s, idle {p['idle_cpu_percent']:.2f} % CPU"
            for key, p in batching["policies"].items()
        )
    )
    data = {
        "size": size,
        "latency": lat,
        "fanout": fan,
        "batching": batching,
        "goal_p99_ms": 50.0,
        "goal_fanout_s": 2.0,
        "command": stack.command("notify", size),
    }
    return out.publish(
        "notify",
        data,
        {
            "notify_p99_ms": lat["p99_ms"],
            "notify_p50_ms": lat["p50_ms"],
            "rate": lat["rate"],
            "delivered": f"{lat['delivered']}/{lat['sent']}",
            "fanout_followers": fan["followers"],
            "fanout_all_published_s": fan["all_published_s"],
            "fanout_last_socket_s": fan["last_socket_s"],
        },
    )
