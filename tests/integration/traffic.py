"""Traffic for the end-to-end tests and the checks that what was sent is what was stored."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from footprint.middleware import FootprintMiddleware
from footprint.settings import load_settings
from footprint.windows import WINDOWS, ranges
from tests.integration.conftest import wait_until

Sent = Counter[tuple[str, str]]


def host_app() -> FastAPI:
    """A site that uses Footprint: the middleware in front of a few routes."""
    app = FastAPI()

    @app.get("/")
    async def home() -> dict[str, str]:
        return {"page": "home"}

    @app.get("/posts/{post_id}")
    async def post(post_id: int) -> dict[str, int]:
        if post_id == 404:
            raise HTTPException(404)
        return {"post": post_id}

    @app.post("/posts")
    async def create() -> dict[str, bool]:
        return {"created": True}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def through_middleware(env: dict[str, str], n: int, seed: int = 1) -> Sent:
    """Serve ``n`` requests through the middleware of a host app; return what it should record."""
    settings = load_settings(
        kafka_url=env["FOOTPRINT_KAFKA_URL"],
        footprints_topic=env["FOOTPRINT_FOOTPRINTS_TOPIC"],
        data_dir=env["FOOTPRINT_DATA_DIR"] + "-host",
    )
    app = host_app()
    app.add_middleware(FootprintMiddleware, settings=settings)
    rng = random.Random(seed)
    sent: Sent = Counter()
    with TestClient(app) as client:
        for _ in range(n):
            roll = rng.random()
            if roll < 0.1:
                r = client.post("/posts")
                sent[("POST", "/posts")] += 1
            elif roll < 0.15:
                r = client.get("/posts/404")
                sent[("GET", "/posts/404")] += 1
            elif roll < 0.2:
                r = client.get("/health")  # excluded: not recorded
                continue
            else:
                post_id = min(int(rng.paretovariate(1.2)), 40)
                r = client.get(f"/posts/{post_id}?utm_source=test")
                sent[("GET", f"/posts/{post_id}")] += 1
            assert r.status_code in (200, 404)
    return sent


GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def through_api(client: httpx.Client, n: int, seed: int = 2, bots: Sent | None = None) -> Sent:
    """Report ``n`` footprints to ``POST /api/footprints``: half one by one, half in lists.

    With a ``bots`` counter, one in ten comes from a crawler and is counted there instead.
    """
    rng = random.Random(seed)
    now = datetime.now(UTC)
    sent: Sent = Counter()

    def one() -> dict[str, Any]:
        link = f"/articles/{min(int(rng.paretovariate(1.1)), 30)}"
        body = {
            "method": "GET",
            "link": link,
            "footprint_time": (now - timedelta(seconds=rng.randint(0, 30))).isoformat(),
        }
        if bots is not None and rng.random() < 0.1:
            bots[("GET", link)] += 1
            body["user_agent"] = GOOGLEBOT
        else:
            sent[("GET", link)] += 1
        return body

    singles = n // 2
    for _ in range(singles):
        r = client.post("/api/footprints", json=one())
        assert r.status_code == 202, r.text
    left = n - singles
    while left:
        size = min(100, left)
        r = client.post("/api/footprints", json=[one() for _ in range(size)])
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == size
        left -= size
    return sent


def postgres_rows(url: str) -> list[tuple[Any, ...]]:
    """Every stored footprint: event id, method, link, time, is_bot, visitor id."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT event_id, method, link, footprint_time, is_bot, visitor_id FROM user_footprint"
        ).fetchall()


def check_stored(api: httpx.Client, pg_url: str, sent: Sent, bots: Sent | None = None) -> None:
    """PostgreSQL, both summaries and every live window agree exactly with what was sent.

    Bots are stored like any footprint but counted apart: not in totals, top pages or windows.
    """
    bots = bots or Counter()
    total, bot_total = sum(sent.values()), sum(bots.values())
    everything = wait_until(
        lambda: r if len(r := postgres_rows(pg_url)) >= total + bot_total else None,
        timeout=120 + (total + bot_total) / 50,
        what=f"{total + bot_total} rows in PostgreSQL",
    )
    assert len(everything) == total + bot_total
    assert len({r[0] for r in everything}) == len(everything), "an event id was stored twice"
    rows = [r for r in everything if not r[4]]
    assert Counter((r[1], r[2]) for r in rows) == sent
    assert Counter((r[1], r[2]) for r in everything if r[4]) == bots

    times = [r[3] for r in everything]
    start = min(times).replace(second=0, microsecond=0)
    end = max(times).replace(second=0, microsecond=0) + timedelta(minutes=1)
    expected_top = sorted(sent.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0]))[:10]
    for bounds in ((start, end), (start - timedelta(seconds=7), end + timedelta(seconds=3))):
        params = {"start": bounds[0].isoformat(), "end": bounds[1].isoformat(), "tz": "Asia/Seoul"}

        seen: dict[str, Any] = {}

        def summary(
            source: str, params: dict[str, str] = params, seen: dict[str, Any] = seen
        ) -> dict[str, Any] | None:
            body = api.get("/api/stats/summary", params={**params, "source": source}).json()
            seen[source] = body.get("total", body)
            return body if body.get("total") == total else None

        try:
            pg = wait_until(lambda: summary("postgres"), what="postgres summary")
            ch = wait_until(lambda: summary("clickhouse"), what="clickhouse summary")
        except AssertionError as e:
            raise AssertionError(f"{e}; wanted {total}, last totals {seen}") from None
        for key in ("total", "previous_total", "percent_change", "top_pages", "buckets"):
            assert pg[key] == ch[key], f"{key}: postgres {pg[key]} != clickhouse {ch[key]}"
        assert pg["previous_total"] == 0
        assert pg["bots"] == ch["bots"] == bot_total
        with_bots = api.get(
            "/api/stats/summary", params={**params, "source": "postgres", "include_bots": "true"}
        ).json()
        assert with_bots["total"] == total + bot_total
        assert [(p["method"], p["link"], p["count"]) for p in pg["top_pages"]] == [
            (m, link, c) for (m, link), c in expected_top
        ]
        assert sum(b["count"] for b in pg["buckets"]) == total
        assert all(b["start"].endswith("+09:00") for b in pg["buckets"])
        assert isinstance(pg["query_ms"], float) and isinstance(ch["query_ms"], float)

    for window, spec in WINDOWS.items():
        expected: dict[float, Counter[str]] = {}
        expected_bots: Counter[float] = Counter()
        identified: set[float] = set()  # ranges holding a visitor id (keyless producers send none)
        for _, _, link, t, is_bot, visitor in everything:
            for lo, _hi in ranges(window, t.timestamp()):
                expected.setdefault(lo, Counter())
                if is_bot:
                    expected_bots[lo] += 1
                else:
                    expected[lo][link] += 1
                    if visitor:
                        identified.add(lo)
        size, step = spec.size, spec.step  # type: ignore[attr-defined]
        for lo, links in expected.items():
            at = datetime.fromtimestamp(lo + size - step + 1, UTC).isoformat()

            last: dict[str, Any] = {}

            def live(
                at: str = at,
                want: tuple[int, int] = (sum(links.values()), expected_bots[lo]),
                window: str = window,
                last: dict[str, Any] = last,
            ) -> dict[str, Any] | None:
                body = api.get(
                    "/api/stats/live", params={"window": window, "at": at, "top": 1000}
                ).json()
                last["body"] = body
                return body if (body["total"], body["bots"]) == want else None

            try:
                body = wait_until(live, what=f"live {window} window at {at}")
            except AssertionError as e:
                got = {p["link"]: p["count"] for p in last.get("body", {}).get("top_pages", [])}
                off = {k: (got.get(k), n) for k, n in links.items() if got.get(k) != n}
                seen = {k: v for k, v in last.get("body", {}).items() if k != "top_pages"}
                raise AssertionError(
                    f"{e}\nwanted total={sum(links.values())} bots={expected_bots[lo]}; "
                    f"last answer {seen}; links (got, wanted) that differ: {off}"
                ) from None
            got = {p["link"]: p["count"] for p in body["top_pages"]}
            assert got == dict(links), {
                k: (got.get(k), links.get(k))
                for k in set(got) | set(links)
                if got.get(k) != links.get(k)
            }
            assert body["visitors"] >= (1 if lo in identified else 0)


BAD_MESSAGES: list[bytes] = [
    b"not json at all",
    b'{"method": "GET"}',
    b"\xff\xfe\xfd",
    b'{"event_id": "x", "method": "GET", "link": "/a", "footprint_time": "2026-01-01T00:00:00Z"}',
    b'{"event_id": "5c1d8a56-7a7b-4e63-9d63-2f0c2f7a0d11", "method": "FETCH", "link": "nope",'
    b' "footprint_time": "yesterday"}',
]


def produce_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Put raw bytes on a topic, as a misbehaving producer would."""

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, key=b"/bad")
        finally:
            await producer.stop()

    asyncio.run(go())


def consume_all(bootstrap: str, topic: str, want: int, timeout: float = 60) -> list[Any]:
    """Read ``want`` records from the start of a topic (fewer if the timeout passes)."""

    async def go() -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        out: list[Any] = []
        try:
            async with asyncio.timeout(timeout):
                while len(out) < want:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        out.extend(records)
        except TimeoutError:
            pass
        finally:
            await consumer.stop()
        return out

    return asyncio.run(go())
