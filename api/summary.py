"""The reference dashboard query, answered by PostgreSQL or by ClickHouse with the same result.

Total for the period and for the period of equal length just before it, the top ten
``(method, link)``, and visits per bucket of 15 minutes, an hour or a day (``interval``; auto:
15 minutes up to a day, hours up to a week, days beyond). Excluded links (health checks) are
left out of every figure. Known bots are counted apart (``bots``) and left out of the figures
unless ``include_bots``.

Both stores count per 15-minute UTC bucket, and hours and days are sums of those, folded here:
every UTC offset in use is a multiple of 15 minutes, so each 15-minute bucket lies inside one
local hour and one local day of the requested time zone (a day has 23 or 25 hours on a DST
change, and the hours of India's +05:30 start at half past in UTC). The stores' SQL stays the
same for every interval, which keeps PostgreSQL and ClickHouse (even 18.16) identical; a year
is at most ~35k rows of 15-minute counts.

Each summary has a time budget (``FOOTPRINT_SUMMARY_TIMEOUT_SECONDS``) that the database itself
enforces, PostgreSQL with ``statement_timeout`` and ClickHouse with ``max_execution_time``:
a query over too many rows is stopped there (``SummaryTimeout``) instead of running on after
the client has given up.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg.errors
from psycopg_pool import AsyncConnectionPool

from footprint.clickhouse import ClickHouse, ClickHouseError

__all__ = [
    "INTERVALS",
    "Interval",
    "Period",
    "Source",
    "SummaryTimeout",
    "pick_interval",
    "summarize",
]

CH_TIMEOUT_EXCEEDED = 159


class SummaryTimeout(Exception):
    """The database stopped a summary query that went beyond the time budget."""


Source = Literal["postgres", "clickhouse"]
Interval = Literal["15m", "hour", "day"]
INTERVALS: tuple[str, ...] = ("auto", "15m", "hour", "day")
BUCKET = timedelta(minutes=15)
TOP_N = 10


def pick_interval(asked: str, start: datetime, end: datetime) -> Interval:
    """The bucket size: as asked, or for ``auto`` 15 minutes up to a day, hours up to a week,
    days beyond (a chart of ~100–700 points either way)."""
    if asked in ("15m", "hour", "day"):
        return asked  # type: ignore[return-value]
    if asked != "auto":
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
    span = end - start
    if span <= timedelta(days=1):
        return "15m"
    return "hour" if span <= timedelta(days=7) else "day"


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval ``[start, end)``, the excluded links, and whether bots count."""

    start: datetime
    end: datetime
    exclude: tuple[str, ...]
    include_bots: bool = False
    site: str | None = None  # None: every site

    @property
    def previous_start(self) -> datetime:
        """Start of the period of equal length just before this one."""
        return self.start - (self.end - self.start)


Totals = tuple[int, int, int]  # this period, previous period, bots in this period

_PG_RANGE = (
    "footprint_time >= %(lo)s AND footprint_time < %(end)s AND NOT (link = ANY(%(exclude)s))"
)
_PG_TOTALS = f"""
SELECT count(*) FILTER (WHERE footprint_time >= %(start)s {{visits}}),
       count(*) FILTER (WHERE footprint_time <  %(start)s {{visits}}),
       count(*) FILTER (WHERE footprint_time >= %(start)s AND is_bot)
FROM user_footprint WHERE {_PG_RANGE.replace("%(lo)s", "%(prev)s")} {{site}}
"""
_PG_TOP = f"""
SELECT method, link, count(*) AS n FROM user_footprint
WHERE {_PG_RANGE.replace("%(lo)s", "%(start)s")} {{site}} {{visits}}
GROUP BY method, link ORDER BY n DESC, link, method LIMIT %(top)s
"""
_PG_BUCKETS = f"""
SELECT date_bin('15 minutes', footprint_time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b, count(*)
FROM user_footprint WHERE {_PG_RANGE.replace("%(lo)s", "%(start)s")} {{site}} {{visits}}
GROUP BY b ORDER BY b
"""


class _Budget:
    """What is left of the time budget, for each query in turn."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SummaryTimeout
        return left


async def _postgres(
    pool: AsyncConnectionPool, p: Period, budget: _Budget
) -> tuple[Totals, list, list]:
    params = {
        "start": p.start,
        "end": p.end,
        "prev": p.previous_start,
        "exclude": list(p.exclude),
        "top": TOP_N,
        "site": p.site,
    }
    visits = "" if p.include_bots else "AND NOT is_bot"
    site = "" if p.site is None else "AND site = %(site)s"
    rows = []
    try:
        # set_config(…, true) is SET LOCAL: it needs a transaction (the pool's connections
        # autocommit) and ends with it, so the connection goes back to the pool unchanged.
        async with pool.connection() as conn, conn.transaction():
            for sql in (_PG_TOTALS, _PG_TOP, _PG_BUCKETS):
                ms = max(1, int(budget.left() * 1000))
                await conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{ms}"])
                rows.append(
                    await (
                        await conn.execute(sql.format(visits=visits, site=site), params)
                    ).fetchall()
                )
    except psycopg.errors.QueryCanceled as e:
        raise SummaryTimeout from e
    totals = rows[0][0]
    return (int(totals[0]), int(totals[1]), int(totals[2])), rows[1], rows[2]


def _ch_source(p: Period) -> tuple[str, str, str, str]:
    """Table, time column, count and conditional count: the minute rollup when aligned."""
    aligned = all(t.second == 0 and t.microsecond == 0 for t in (p.start, p.end))
    if aligned and p.site is None:  # the rollup is not kept per site
        return "user_footprint_minute", "minute", "sum(visits)", "sumIf(visits, {cond})"
    return "user_footprint FINAL", "footprint_time", "count()", "countIf({cond})"


def _ch_limit(ch: ClickHouse, seconds: float) -> str:
    # ClickHouse 18.16 takes whole seconds only ("Bad get: has Float64"); recent ones take any.
    if ch.server_version >= (22,):
        return f" SETTINGS max_execution_time = {max(seconds, 0.001):.3f}"
    return f" SETTINGS max_execution_time = {max(1, math.ceil(seconds))}"


def _clickhouse_sync(ch: ClickHouse, p: Period, budget: _Budget) -> tuple[Totals, list, list]:
    try:
        return _clickhouse_queries(ch, p, budget)
    except ClickHouseError as e:
        if e.code == CH_TIMEOUT_EXCEEDED:
            raise SummaryTimeout from e
        raise


def _clickhouse_queries(ch: ClickHouse, p: Period, budget: _Budget) -> tuple[Totals, list, list]:
    table, col, agg, agg_if = _ch_source(p)
    params: dict[str, Any] = {
        "start": p.start.replace(tzinfo=None),
        "end": p.end.replace(tzinfo=None),
        "prev": p.previous_start.replace(tzinfo=None),
        "exclude": tuple(p.exclude) or ("",),
        "site": p.site or "",
    }
    current = f"{col} >= toDateTime(%(start)s, 'UTC')"
    visit = "1" if p.include_bots else "is_bot = 0"
    excluded = "link NOT IN %(exclude)s" + ("" if p.site is None else " AND site = %(site)s")
    where = f"{current} AND {col} < toDateTime(%(end)s, 'UTC') AND {excluded} AND {visit}"
    totals = ch.execute(
        f"SELECT {agg_if.format(cond=f'{current} AND {visit}')}, "
        f"{agg_if.format(cond=f'NOT ({current}) AND {visit}')}, "
        f"{agg_if.format(cond=f'{current} AND is_bot = 1')} "
        f"FROM {table} WHERE {col} >= toDateTime(%(prev)s, 'UTC') "
        f"AND {col} < toDateTime(%(end)s, 'UTC') AND {excluded}" + _ch_limit(ch, budget.left()),
        params,
    )
    top = ch.execute(
        f"SELECT method, link, {agg} AS n FROM {table} WHERE {where} "
        f"GROUP BY method, link ORDER BY n DESC, link, method LIMIT {TOP_N}"
        + _ch_limit(ch, budget.left()),
        params,
    )
    buckets = ch.execute(
        f"SELECT toStartOfFifteenMinutes({col}) AS b, {agg} FROM {table} "
        f"WHERE {where} GROUP BY b ORDER BY b" + _ch_limit(ch, budget.left()),
        params,
    )
    t = totals[0] if totals else (0, 0, 0)
    return (int(t[0] or 0), int(t[1] or 0), int(t[2] or 0)), list(top), list(buckets)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _bucket_floor(t: datetime) -> datetime:
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % int(BUCKET.total_seconds()), UTC)


def _label(t: datetime, interval: Interval, tz: ZoneInfo) -> datetime:
    """The local start of the bucket holding the 15-minute UTC bucket ``t``."""
    local = t.astimezone(tz)
    if interval == "hour":
        # fold is kept: the repeated hour of a DST change stays two buckets.
        return local.replace(minute=0)
    if interval == "day":
        return local.replace(hour=0, minute=0, fold=0)
    return local


def _fill(
    rows: Sequence[Sequence[Any]], p: Period, tz: ZoneInfo, interval: Interval = "15m"
) -> list[dict[str, Any]]:
    found = {_as_utc(r[0]): int(r[1]) for r in rows}
    buckets: dict[str, int] = {}  # insertion-ordered: the buckets in time order
    t = _bucket_floor(p.start)
    while t < p.end:
        key = _label(t, interval, tz).isoformat()
        buckets[key] = buckets.get(key, 0) + found.get(t, 0)
        t += BUCKET
    return [{"start": start, "count": count} for start, count in buckets.items()]


async def summarize(
    source: Source,
    period: Period,
    tz: ZoneInfo,
    *,
    pool: AsyncConnectionPool | None = None,
    clickhouse: ClickHouse | None = None,
    timeout: float = 10.0,
    interval: Interval = "15m",
) -> dict[str, Any]:
    """The dashboard summary from one source, with the time the query took.

    Raises ``SummaryTimeout`` when the database stops it after ``timeout`` seconds.
    """
    started = time.perf_counter()
    budget = _Budget(timeout)
    if source == "postgres":
        assert pool is not None
        (total, previous, bots), top, buckets = await _postgres(pool, period, budget)
    else:
        assert clickhouse is not None
        (total, previous, bots), top, buckets = await asyncio.to_thread(
            _clickhouse_sync, clickhouse, period, budget
        )
    elapsed_ms = (time.perf_counter() - started) * 1000
    change = None if previous == 0 else round((total - previous) * 100.0 / previous, 2)
    return {
        "source": source,
        "start": period.start.astimezone(tz).isoformat(),
        "end": period.end.astimezone(tz).isoformat(),
        "tz": tz.key,
        "total": total,
        "previous_total": previous,
        "percent_change": change,
        "bots": bots,
        "include_bots": period.include_bots,
        "top_pages": [{"method": m, "link": link, "count": int(n)} for m, link, n in top],
        "interval": interval,
        "buckets": _fill(buckets, period, tz, interval),
        "query_ms": round(elapsed_ms, 3),
    }
