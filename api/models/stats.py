"""``/api/stats``: the live window (``api/live.py``) and the summary (``api/summary.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.models.common import Answer, IsoTime

__all__ = ["LivePage", "LiveStats", "ReadableSites", "Summary", "SummaryBucket", "SummaryPage"]


class LivePage(Answer):
    """A link among the window's most visited."""

    link: str = Field(description="The page's path.")
    count: int = Field(description="Visits in the window, bots left out.")


class LiveEvent(Answer):
    """A custom event's count in a live window."""

    name: str = Field(description="The event's name, e.g. Signup.")
    count: int = Field(description="Times it was sent in the window.")


class LiveStats(Answer):
    """The live window that holds a given time, from the worker's counts in Redis."""

    window: Literal["1m", "5m", "1h"] = Field(description="The window size asked for.")
    start: IsoTime = Field(description="The window's start (UTC).")
    end: IsoTime = Field(description="The window's end, exclusive (UTC).")
    total: int = Field(description="Visits in the window, bots left out.")
    bots: int = Field(description="Visits by known bots (crawler user agents), counted apart.")
    visitors: int = Field(description="Unique visitors, approximate (HyperLogLog).")
    top_pages: list[LivePage] = Field(description="The most visited links, most first.")
    top_events: list[LiveEvent] = Field(
        description="The most sent custom events (POST /api/event, footprint.track), by name; "
        "they count in total, not under their page."
    )
    other: int = Field(description="Footprints of every page and event not listed.")


class SummaryPage(Answer):
    """A (method, link) among the period's ten most visited."""

    method: str = Field(description="The HTTP method.")
    link: str = Field(description="The page's path.")
    count: int = Field(description="Visits in the period.")


class SummaryBucket(Answer):
    """Visits in one bucket of the summary's interval."""

    start: IsoTime = Field(
        description="The bucket's start, in the requested time zone (the first bucket may "
        "start before the period: it counts from the period's start)."
    )
    count: int = Field(description="Visits in the bucket.")


class Summary(Answer):
    """The dashboard's summary of a period, from PostgreSQL or ClickHouse (the same figures)."""

    source: Literal["postgres", "clickhouse"] = Field(description="The store that answered.")
    start: IsoTime = Field(description="The period's start, in the requested time zone.")
    end: IsoTime = Field(description="The period's end, exclusive, in the requested time zone.")
    tz: str = Field(description="The IANA time zone of the labels.")
    total: int = Field(description="Visits in the period (bots only if include_bots).")
    previous_total: int = Field(description="Visits in the period of equal length just before.")
    percent_change: float | None = Field(
        description="Change from previous_total in percent, 2 decimals; null when it was 0."
    )
    bots: int = Field(description="Visits by known bots in the period.")
    include_bots: bool = Field(description="Whether bots are counted in the figures.")
    top_pages: list[SummaryPage] = Field(description="The ten most visited, most first.")
    interval: Literal["15m", "hour", "day"] = Field(
        description="The buckets' size (what auto chose, when asked for auto)."
    )
    buckets: list[SummaryBucket] = Field(description="Every bucket of the period, in order.")
    query_ms: float = Field(description="How long the queries took, in milliseconds.")


class ReadableSites(Answer):
    """What a stats credential reads: the dashboard's site switcher."""

    access: Literal["admin", "key", "link"] = Field(
        description="An admin token (every site), a site API key or a shared link (one site)."
    )
    sites: list[str] = Field(description="The sites it may read, by domain, sorted.")
