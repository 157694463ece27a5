"""Daily visitor salts in the real Redis: shared by API processes, gone when their day is."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_lib
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from footprint.keys import salt_key
from footprint.salts import SALT_BYTES, DailySalts
from footprint.schema import Footprint
from footprint.settings import load_settings
from footprint.stack import PostgresServer, RedisServer
from tests.integration.conftest import JWT_SECRET

pytestmark = pytest.mark.integration

AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
VIEW = {"method": "GET", "link": "/posts/1"}


@pytest.fixture
def redis_url(stores: tuple[PostgresServer, RedisServer]) -> str:
    url = stores[1].url.rsplit("/", 1)[0] + "/15"
    redis_lib.Redis.from_url(url).flushdb()
    return url


def _api(redis_url: str, tmp_path: Path) -> FastAPI:
    """One API process: its producer only buffers, its salts come from the real Redis."""
    settings = load_settings(
        kafka_url="kafka://127.0.0.1:1",
        postgres_url="postgresql://x:x@127.0.0.1:1/x",
        clickhouse_url="clickhouse://127.0.0.1:1/x",
        redis_url=redis_url,
        jwt_secret=JWT_SECRET,
        data_dir=tmp_path,
    )
    return create_app(settings)


def _visitor(app: FastAPI) -> str:
    client = TestClient(app, client=("203.0.113.7", 50000))
    r = client.post("/api/footprints", json=VIEW, headers={"user-agent": AGENT})
    assert r.status_code == 202
    value = app.state.producer._buffer[-1][1]
    return Footprint.from_bytes(value).visitor_id


def test_two_api_processes_share_the_days_salt(redis_url: str, tmp_path: Path) -> None:
    a, b = _api(redis_url, tmp_path / "a"), _api(redis_url, tmp_path / "b")
    assert _visitor(a) == _visitor(b)
    assert a.state.salts.shared and b.state.salts.shared
    stored = redis_lib.Redis.from_url(redis_url).get(salt_key(datetime.now(UTC).date()))
    assert stored is not None and len(stored) == SALT_BYTES


def test_salt_key_expires_when_its_utc_day_ends(redis_url: str, tmp_path: Path) -> None:
    _visitor(_api(redis_url, tmp_path))
    now = datetime.now(UTC)
    ttl = redis_lib.Redis.from_url(redis_url).ttl(salt_key(now.date()))
    end_of_day = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    assert ttl > 0
    assert abs((now + timedelta(seconds=ttl)) - end_of_day) < timedelta(seconds=5)


def test_without_the_key_a_new_process_gets_a_new_visitor_id(
    redis_url: str, tmp_path: Path
) -> None:
    before = _visitor(_api(redis_url, tmp_path / "a"))
    redis_lib.Redis.from_url(redis_url).delete(salt_key(datetime.now(UTC).date()))
    after = _visitor(_api(redis_url, tmp_path / "b"))
    assert after != before


def test_next_day_has_its_own_salt_and_expiry(redis_url: str) -> None:
    today = datetime.now(UTC)
    clock = [today]
    salts = DailySalts(redis_url, clock=lambda: clock[0])
    first = asyncio.run(salts.current())
    clock[0] = today + timedelta(days=1)
    second = asyncio.run(salts.current())
    assert second != first
    client = redis_lib.Redis.from_url(redis_url)
    assert client.get(salt_key(clock[0].date())) == second
    # Tomorrow's key lives until tomorrow ends: between one and two days from now.
    assert 86_400 < client.ttl(salt_key(clock[0].date())) <= 2 * 86_400


def test_a_process_that_started_without_redis_adopts_the_shared_salt(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("footprint.salts.RETRY_SECONDS", 0.0)  # try Redis again on the next call
    shared = asyncio.run(DailySalts(redis_url).current())
    lonely = DailySalts("redis://127.0.0.1:1/0")  # Redis unreachable: a salt of its own
    local = asyncio.run(lonely.current())
    assert local != shared and not lonely.shared
    lonely.redis_url = redis_url  # Redis answers again
    assert asyncio.run(lonely.current()) == shared
    assert lonely.shared
