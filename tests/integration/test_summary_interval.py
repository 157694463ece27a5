"""GET /api/stats/summary's interval through the real app on a real PostgreSQL and chdb: every
interval gives the same buckets from both stores, as counted by hand, in a half-hour time zone.

The lifespan opens only the two stores (as in test_query_api.py): no broker, no worker; the
footprints are written by the worker's own sinks.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from footprint.schema import Footprint
from footprint.stack import PostgresServer, RedisServer
from tests.integration.stored import stored_api

pytestmark = pytest.mark.integration

JWT_SECRET = "summary-interval-tests-secret-0123456789"
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: local hours start at half past in UTC
# Three local days ago at local midnight: a 3-day period is inside the stores' range.
START = (
    datetime.now(KOLKATA).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
).astimezone(UTC)
END = START + timedelta(days=3)
# A visit every 50 minutes for three days, plus a burst: uneven buckets at every size.
TIMES = [START + timedelta(minutes=50 * i) for i in range(int(3 * 24 * 60 / 50))]
TIMES += [START + timedelta(hours=30, minutes=m) for m in range(0, 60, 4)]
DATA = [
    Footprint(event_id=uuid.uuid4(), method="GET", link=f"/p/{i % 7}", footprint_time=t)
    for i, t in enumerate(TIMES)
]


@pytest.fixture(scope="module")
def client(
    stores: tuple[PostgresServer, RedisServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with stored_api(stores, tmp_path_factory, DATA, "s") as answer:
        yield answer


def _expected(interval: str, start: datetime, end: datetime) -> Counter[str]:
    """Visits per local bucket start, counted by hand (only the non-empty ones)."""
    counts: Counter[str] = Counter()
    for t in TIMES:
        if not start <= t < end:
            continue
        local = t.astimezone(KOLKATA)
        if interval == "hour":
            local = local.replace(minute=0, second=0)
        elif interval == "day":
            local = local.replace(hour=0, minute=0, second=0)
        else:
            local = local.replace(minute=local.minute - local.minute % 15, second=0)
        counts[local.isoformat()] += 1
    return counts


def _summary(
    client: TestClient, admin: dict[str, str], source: str, **params: Any
) -> dict[str, Any]:
    r = client.get(
        "/api/stats/summary",
        params={"source": source, "tz": "Asia/Kolkata", **params},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    ("days", "asked", "interval", "buckets"),
    [
        (3, "auto", "hour", 72),
        (3, "day", "day", 3),
        (1, "auto", "15m", 96),
        (1, "hour", "hour", 24),
        (3, "15m", "15m", 288),
    ],
)
def test_both_stores_give_the_same_buckets_at_every_interval(
    client: tuple[TestClient, dict[str, str]], days: int, asked: str, interval: str, buckets: int
) -> None:
    test_client, admin = client
    end = START + timedelta(days=days)
    params = {"start": START.isoformat(), "end": end.isoformat(), "interval": asked}
    pg = _summary(test_client, admin, "postgres", **params)
    ch = _summary(test_client, admin, "clickhouse", **params)
    assert pg["interval"] == ch["interval"] == interval
    assert pg["buckets"] == ch["buckets"]
    assert len(pg["buckets"]) == buckets
    assert {b["start"]: b["count"] for b in pg["buckets"] if b["count"]} == _expected(
        interval, START, end
    )
    assert sum(b["count"] for b in pg["buckets"]) == pg["total"] == ch["total"]
    assert all(b["start"].endswith("+05:30") for b in pg["buckets"])


def test_a_period_not_on_the_hour_starts_its_first_bucket_before_it(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    test_client, admin = client
    start, end = START + timedelta(hours=5, minutes=7, seconds=3), START + timedelta(days=2)
    params = {"start": start.isoformat(), "end": end.isoformat(), "interval": "hour"}
    pg = _summary(test_client, admin, "postgres", **params)
    ch = _summary(test_client, admin, "clickhouse", **params)
    assert pg["buckets"] == ch["buckets"]
    assert (
        pg["buckets"][0]["start"]
        == start.astimezone(KOLKATA).replace(minute=0, second=0).isoformat()
    )
    assert {b["start"]: b["count"] for b in pg["buckets"] if b["count"]} == _expected(
        "hour", start, end
    )


def test_an_unknown_interval_is_422_naming_it(client: tuple[TestClient, dict[str, str]]) -> None:
    test_client, admin = client
    r = test_client.get("/api/stats/summary", params={"interval": "week"}, headers=admin)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["query", "interval"]]
