"""Visit statistics: live windows from the Faust tables, and the historical dashboard summary.

Every route here needs a stats credential (``read_stats``), checked before anything else. The
summary shows one site (a site key's or link's own, or the ``site`` asked) or, for an admin who
names none, every site; the live windows are not kept per site, so they need an admin token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError

from api.auth import AllSitesReader, StatsReader, read_stats, site_or_404
from api.deps import ClickHouseDep, PostgresDep, RedisDep, SettingsDep
from api.live import live_stats
from api.models.errors import errors
from api.models.stats import LiveStats, ReadableSites, Summary
from api.summary import Period, SummaryTimeout, pick_interval, summarize
from footprint.schema import EARLIEST, MAX_AHEAD, NO_NUL

# On the router, so that a route added here later cannot forget it.
router = APIRouter(
    prefix="/api/stats",
    tags=["stats"],
    dependencies=[Depends(read_stats)],
    responses=errors(401, 403, 404, 422),
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _query_error(field: str, message: str, value: Any) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}]
    )


@router.get("/sites", response_model=ReadableSites)
async def readable_sites(access: StatsReader, request: Request) -> dict[str, Any]:
    """The sites this credential reads: every registered one for an admin, else its own."""
    # A key or a shared link names no site, and the dashboard must know which one it shows.
    if access.site is not None:
        return {"access": access.kind, "sites": [access.site]}
    registry = getattr(request.app.state, "sites", None)
    return {"access": access.kind, "sites": sorted(registry.snapshot.sites) if registry else []}


@router.get("/live", response_model=LiveStats)
async def live(
    _reader: AllSitesReader,
    redis: RedisDep,
    settings: SettingsDep,
    window: Annotated[Literal["1m", "5m", "1h"], Query(description="Window size")] = "1m",
    at: Annotated[
        datetime | None, Query(description="A time inside the window; now by default")
    ] = None,
    top: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> dict[str, Any]:
    """The current window's total, unique visitors and top pages (from the worker's tables)."""
    now = datetime.now(UTC)
    when = _utc(at) if at else now
    if not EARLIEST <= when <= now + MAX_AHEAD:
        # Footprints outside this range are refused, so no window there can hold any.
        raise _query_error("at", f"must be between {EARLIEST.isoformat()} and now + 5 minutes", at)
    return await live_stats(redis, window, when, top or settings.live_top_n, settings.partitions)


@router.get(
    "/summary",
    response_model=Summary,
    responses=errors(
        503,
        504,
        notes={
            503: "The source store is unavailable",
            504: "Stopped after FOOTPRINT_SUMMARY_TIMEOUT_SECONDS: ask for a shorter period",
        },
    ),
)
async def summary(
    access: StatsReader,
    settings: SettingsDep,
    pool: PostgresDep,
    clickhouse: ClickHouseDep,
    start: Annotated[
        datetime | None, Query(description="Start (ISO 8601); end - 24 h by default")
    ] = None,
    end: Annotated[
        datetime | None, Query(description="End, exclusive (ISO 8601); now by default")
    ] = None,
    source: Annotated[Literal["postgres", "clickhouse"], Query()] = "postgres",
    tz: Annotated[
        str, Query(max_length=64, description="IANA time zone for bucket labels")
    ] = "UTC",
    include_bots: Annotated[bool, Query(description="Count known bots as visits")] = False,
    interval: Annotated[
        Literal["auto", "15m", "hour", "day"],
        Query(
            description="Bucket size; auto: 15m up to a day, hour up to a week, day beyond. "
            "Hours and days are cut in the requested time zone."
        ),
    ] = "auto",
    site: Annotated[
        str | None,
        Query(
            max_length=512,
            pattern=NO_NUL,
            description='The site (domain, "" for the default one); a site key\'s own by '
            "default, every site for an admin",
        ),
    ] = None,
) -> dict[str, Any]:
    """Total vs the previous period, top 10 pages and buckets of 15 minutes, an hour or a day."""
    if site is not None:
        site_or_404(access, site)
    shown = access.site_for(site.strip().lower() if site is not None else None)
    max_period = timedelta(days=settings.summary_max_days)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _query_error("tz", f"unknown time zone {tz!r}", tz) from None
    try:
        end_utc = _utc(end) if end else datetime.now(UTC)
        start_utc = _utc(start) if start else end_utc - timedelta(hours=24)
        end_utc - (end_utc - start_utc) * 2  # noqa: B018 - the previous period must exist too
    except OverflowError:
        raise _query_error("start" if start else "end", "out of range", None) from None
    latest = datetime.now(UTC) + MAX_AHEAD
    # No footprint is outside EARLIEST … now + 5 min, and the stores' time types end not far
    # beyond (ClickHouse's DateTime starts in 1970): a period there has nothing to show.
    bounds = (("end", end_utc, end, EARLIEST), ("start", start_utc, start, EARLIEST - max_period))
    for name, value, given, earliest in bounds:
        if not earliest <= value <= latest:
            raise _query_error(
                name, f"must be between {earliest.date().isoformat()} and now + 5 minutes", given
            )
    if start_utc >= end_utc:
        raise _query_error("start", "start must be before end", start)
    if end_utc - start_utc > max_period:
        days = settings.summary_max_days
        raise _query_error("start", f"the period may span at most {days} days", start)
    period = Period(start_utc, end_utc, tuple(settings.stats_exclude_links), include_bots, shown)
    timeout = settings.summary_timeout_seconds
    try:
        return await summarize(
            source,
            period,
            zone,
            pool=pool,
            clickhouse=clickhouse,
            timeout=timeout,
            interval=pick_interval(interval, start_utc, end_utc),
        )
    except SummaryTimeout:
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT,
            f"the summary took longer than {timeout:g} s on {source} and was stopped: "
            "ask for a shorter period",
        ) from None
    except Exception as e:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"{source} unavailable: {e}"
        ) from e
