"""Bounded work per request, on real servers: Redis windows, summaries, live sockets.

* Redis window keys expire from their window's end, and a window already past its retention
  is not written: backdated footprints cannot fill Redis.
* At most ``FOOTPRINT_LIVE_MAX_LINKS`` links per window; the rest shows as ``other``.
* A summary over its time budget is stopped by the database and answers 504.
* One live snapshot per update for every ``/ws/live`` socket; sockets capped per user and in all.

The app runs in-process (``TestClient``) on Tansu, PostgreSQL, Redis and the session's chdb.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import redis
import redis.asyncio
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api import live_ws
from api.auth import mint_token
from api.live import live_stats
from api.main import create_app
from footprint.clickhouse import chdb_open_path, connect
from footprint.migrate import apply_clickhouse, apply_postgres
from footprint.settings import Settings, load_settings
from footprint.stack import PostgresServer, RedisServer
from footprint.windows import RETAIN_AFTER_END, live_range, ranges
from streams.sinks.base import Batch, WindowCount
from streams.sinks.redis import RedisSink
from tests.integration.conftest import (
    admin_headers,
    fresh_redis_url,
    wait_for_minute_room,
    wait_until,
)

pytestmark = pytest.mark.integration

TANSU = pytest.mark.parametrize("stack", ["tansu"], indirect=True)  # starts in milliseconds


@pytest.fixture
def redis_url(stores: tuple[PostgresServer, RedisServer]) -> str:
    return fresh_redis_url(stores[1])


def counts_at(when: float, links: dict[str, int], partition: int = 0) -> list[WindowCount]:
    """What the worker hands the sink for ``links`` counted in every window containing ``when``."""
    out = []
    total = sum(links.values())
    for window in ("1m", "5m", "1h"):
        for start, end in ranges(window, when):
            out.append(WindowCount(window, start, end, total, partition=partition))
            out += [
                WindowCount(window, start, end, n, link, partition) for link, n in links.items()
            ]
    return out


def write(url: str, batch: Batch, max_links: int = 1000) -> None:
    async def run() -> None:
        sink = RedisSink(url, max_links=max_links)
        try:
            await sink.write(batch)
        finally:
            await sink.close()

    asyncio.run(run())


def test_backdated_windows_leave_no_long_lived_keys(redis_url: str) -> None:
    now = time.time()
    client = redis.Redis.from_url(redis_url)
    # Footprints from a day ago, three hours ago and now: distinct links, as an attacker sends.
    days_ago = counts_at(now - 86_400, {f"/old/{i}": 1 for i in range(50)})
    hours_ago = counts_at(now - 3 * 3600, {f"/older/{i}": 1 for i in range(50)})
    recent = counts_at(now - 100 * 60, {"/recent": 2})  # its 1m window has ~20 min left
    current = counts_at(now, {"/now": 3})
    write(redis_url, Batch(counts=days_ago + hours_ago + recent + current))

    keys = {k.decode(): client.ttl(k) for k in client.keys("*")}
    windows_written = {k.split(":")[2] + ":" + k.split(":")[3] for k in keys}
    # Only windows still readable: the current ones and the recent ones (5m, 1h, and the 1m
    # one that ends 98 minutes ago); nothing from three hours or a day ago.
    assert len(windows_written) == 1 + 5 + 1 + (1 + 5 + 1), sorted(windows_written)
    assert all(0 < ttl <= 3600 + RETAIN_AFTER_END for ttl in keys.values()), keys
    minute = int(live_range("1m", now - 100 * 60)[0])
    recent_ttl = client.ttl(f"footprint:live:1m:{minute}:totals")
    assert 0 < recent_ttl <= minute + 60 + RETAIN_AFTER_END - now + 1
    assert recent_ttl < 25 * 60, "a backdated window expires from its end, not from now"

    # What the live view shows is unchanged: the current window has its count.
    async def current_total() -> int:
        r = redis.asyncio.Redis.from_url(redis_url)
        try:
            now_dt = datetime.fromtimestamp(now, UTC)
            return int((await live_stats(r, "1m", now_dt, 10, 1))["total"])
        finally:
            await r.aclose()

    assert asyncio.run(current_total()) == 3


def test_live_keeps_the_top_links_and_shows_the_rest_as_other(redis_url: str) -> None:
    now = time.time()
    at = datetime.fromtimestamp(now, UTC)
    client = redis.Redis.from_url(redis_url)
    # Two partitions; 20 distinct links with counts 1..20 on partition 0.
    links = {f"/l{n}": n for n in range(1, 21)}
    write(redis_url, Batch(counts=counts_at(now, links) + counts_at(now, {"/p1": 7}, 1)), 5)

    async def live(top: int) -> dict:
        r = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await live_stats(r, "1m", at, top, 2)
        finally:
            await r.aclose()

    start = int(live_range("1m", now)[0])
    assert client.zcard(f"footprint:live:1m:{start}:links:0") == 5
    body = asyncio.run(live(3))
    assert body["total"] == 210 + 7
    assert body["top_pages"] == [
        {"link": "/l20", "count": 20},
        {"link": "/l19", "count": 19},
        {"link": "/l18", "count": 18},
    ]
    assert body["other"] == 217 - 57

    # A trimmed link that grows (counts are absolute) comes back with its true count.
    write(redis_url, Batch(counts=[c for c in counts_at(now, {"/l1": 30}) if c.link]), 5)
    body = asyncio.run(live(1))
    assert body["top_pages"] == [{"link": "/l1", "count": 30}]
    assert client.zcard(f"footprint:live:1m:{start}:links:0") == 5


# --- the app ---------------------------------------------------------------------------------


@contextlib.contextmanager
def running(env: dict[str, str], tmp_path: Path, **overrides: object) -> Iterator[TestClient]:
    """The API on the test's servers and the session's chdb, migrated."""
    values = {k.removeprefix("FOOTPRINT_").lower(): v for k, v in env.items()}
    path = chdb_open_path() or str(tmp_path / "chdb")
    values["clickhouse_url"] = f"chdb://{path}?database=bounded_{uuid.uuid4().hex[:8]}"
    settings: Settings = load_settings(**{**values, **overrides})
    apply_postgres(settings.require("postgres_url"))
    ch = connect(settings.require("clickhouse_url"))
    try:
        apply_clickhouse(ch)
    finally:
        ch.close()
    # Stats, /metrics and /ws/live need a stats credential: every call sends the admin's.
    with TestClient(create_app(settings), headers=admin_headers()) as client:
        yield client


def snapshots(api: TestClient) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith("footprint_api_live_snapshots_total "):
            return float(line.split()[1])
    raise AssertionError("no footprint_api_live_snapshots_total")


@TANSU
def test_one_snapshot_per_update_is_sent_to_every_live_socket(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_ws, "REFRESH_SECONDS", 60.0)  # only the update takes a snapshot
    with running(env, tmp_path, ws_max_per_user=50) as api, contextlib.ExitStack() as sockets:
        wait_until(api.app.state.hub.connected.is_set, what="the hub's subscription")  # type: ignore[attr-defined]
        wait_for_minute_room(10)
        live = [sockets.enter_context(api.websocket_connect("/ws/live")) for _ in range(20)]
        firsts = {ws.receive_text() for ws in live}
        assert len(firsts) == 1 and snapshots(api) == 1, "20 connections, one snapshot"

        write(env["FOOTPRINT_REDIS_URL"], Batch(counts=counts_at(time.time(), {"/a": 4})))
        updates = [ws.receive_json() for ws in live]
        assert snapshots(api) == 2, "one update, one snapshot"
        assert all(u == updates[0] for u in updates)
        assert updates[0]["windows"]["1m"]["total"] == 4
        assert updates[0]["windows"]["1m"]["top_pages"] == [{"link": "/a", "count": 4}]


@TANSU
def test_sockets_over_the_caps_are_closed_with_a_reason(
    env: dict[str, str], tmp_path: Path
) -> None:
    with running(env, tmp_path, ws_max_per_user=2, ws_max_total=3) as api:
        settings = api.app.state.settings  # type: ignore[attr-defined]

        def inbox(user: str):  # noqa: ANN202
            token = mint_token(settings, user)
            return api.websocket_connect("/ws", headers={"Authorization": f"Bearer {token}"})

        with contextlib.ExitStack() as open_:
            for _ in range(2):
                ws = open_.enter_context(inbox("ann"))
                assert ws.receive_json()["type"] == "hello"
            with inbox("ann") as third, pytest.raises(WebSocketDisconnect) as refused:
                third.receive_json()
            assert refused.value.code == 1008 and "too many sockets" in refused.value.reason

            ws = open_.enter_context(api.websocket_connect("/ws/live"))
            assert ws.receive_json()["type"] == "live"
            # The process holds three sockets: anyone else is told to come back later.
            with inbox("bob") as fourth, pytest.raises(WebSocketDisconnect) as full:
                fourth.receive_json()
            assert full.value.code == 1013 and "try again later" in full.value.reason
        # Closed sockets are uncounted: there is room again.
        with inbox("bob") as ws:
            assert ws.receive_json()["type"] == "hello"
        assert "footprint_api_websocket_refused_total 2.0" in api.get("/metrics").text


def load_rows(pg_url: str, ch_url: str, n: int, end: datetime) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO user_footprint (event_id, method, link, footprint_time) "
            "SELECT gen_random_uuid(), 'GET', '/p/' || (i %% 5000), "
            "%s - make_interval(secs => i) FROM generate_series(1, %s) i",
            (end, n),
        )
    ch = connect(ch_url)
    try:
        ch.execute(
            "INSERT INTO user_footprint (event_id, method, link, footprint_time, ingested_at) "
            "SELECT generateUUIDv4(), 'GET', concat('/p/', toString(number % 5000)), "
            f"toDateTime('{end:%Y-%m-%d %H:%M:%S}', 'UTC') - number, now() "
            f"FROM numbers(1, {n})"
        )
    finally:
        ch.close()


@TANSU
def test_a_summary_over_its_budget_is_stopped_and_answers_504(
    env: dict[str, str], tmp_path: Path
) -> None:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=7)  # not minute-aligned
    n = 300_000
    with running(env, tmp_path, summary_timeout_seconds=0.01) as api:
        settings = api.app.state.settings  # type: ignore[attr-defined]
        load_rows(env["FOOTPRINT_POSTGRES_URL"], settings.clickhouse_url, n, end)
        params = {"start": (end - timedelta(days=5)).isoformat(), "end": end.isoformat()}
        for source in ("postgres", "clickhouse"):
            r = api.get("/api/stats/summary", params={**params, "source": source})
            assert r.status_code == 504, (source, r.status_code, r.text[:300])
            assert "longer than 0.01 s" in r.json()["detail"]
        # PostgreSQL cancelled it: nothing is left running on the table.
        with psycopg.connect(env["FOOTPRINT_POSTGRES_URL"]) as conn:
            running_queries = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE '%FROM user_footprint%' AND pid <> pg_backend_pid()"
            ).fetchone()
        assert running_queries == (0,)

        # With room, both stores answer the same figures.
        api.app.state.settings = settings.model_copy(update={"summary_timeout_seconds": 60})  # type: ignore[attr-defined]
        answers = [
            api.get("/api/stats/summary", params={**params, "source": s}).json()
            for s in ("postgres", "clickhouse")
        ]
        assert [a.get("total") for a in answers] == [n, n], answers
        assert answers[0]["top_pages"] == answers[1]["top_pages"]

        too_long = {"start": (end - timedelta(days=367)).isoformat(), "end": end.isoformat()}
        r = api.get("/api/stats/summary", params=too_long)
        assert r.status_code == 422 and "at most 366 days" in r.text
