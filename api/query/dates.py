"""Date ranges of the query API: Plausible's shortcuts and ISO 8601 pairs, in a time zone.

A range resolves to a half-open UTC interval ``[start, end)`` of whole seconds (ClickHouse keeps
footprint times to the second, so whole-second bounds select the same footprints in both stores)
and to the local first and last days it covers, which time buckets and labels use.

* ``day`` today; ``7d``, ``28d``, ``30d``, ``91d`` the N days ending today, today included;
  ``month``, ``year`` the whole current month or year; ``6mo``, ``12mo`` that many whole months
  ending with the current one; ``24h`` the 24 hours up to now; ``all`` since 2000-01-01.
* ``["2024-01-01", "2024-01-31"]`` those local days, both included;
  ``["2024-01-01T12:00:00+02:00", "2024-01-01T15:59:59+02:00"]`` those instants, both included
  (a time without an offset is in the query's time zone).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["EARLIEST_DAY", "LATEST_DAY", "SHORTCUTS", "DateRange", "bucket_labels", "resolve"]

EARLIEST_DAY = date(2000, 1, 1)  # no footprint is older (footprint.schema.EARLIEST)
LATEST_DAY = date(2099, 12, 31)
SHORTCUTS = ("day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all")
MAX_LABELS = 100_000
SECOND = timedelta(seconds=1)

Interval = Literal["minute", "hour", "day", "week", "month"]


@dataclass(frozen=True)
class DateRange:
    """``[start, end)`` in UTC, whole seconds; the local days it covers; its zone."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date
    zone: ZoneInfo

    def echo(self) -> list[str]:
        """The range as Plausible's response shows it: first and last instant, local, ISO 8601."""
        return [
            self.start.astimezone(self.zone).isoformat(),
            (self.end - SECOND).astimezone(self.zone).isoformat(),
        ]

    def auto_interval(self) -> Interval:
        """The bucket of the ``time`` dimension: month beyond a month, day beyond a day."""
        first, last = self.first_day, self.last_day
        months = (last.year - first.year) * 12 + last.month - first.month
        if last.day < first.day:
            months -= 1
        if months > 0:
            return "month"
        return "day" if last > first else "hour"


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _floor(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(microsecond=0)


def _days(first: date, last: date, zone: ZoneInfo) -> DateRange:
    if not EARLIEST_DAY <= first <= last <= LATEST_DAY:
        raise ValueError(
            f"must be days from {EARLIEST_DAY} to {LATEST_DAY}, the first not after the last"
        )
    return DateRange(
        _midnight(first, zone), _midnight(last + timedelta(days=1), zone), first, last, zone
    )


def _instants(start: datetime, last: datetime, zone: ZoneInfo) -> DateRange:
    start, end = _floor(start), _floor(last) + SECOND
    first_day, last_day = start.astimezone(zone).date(), (end - SECOND).astimezone(zone).date()
    if not (first_day >= EARLIEST_DAY and last_day <= LATEST_DAY and start < end):
        raise ValueError(
            f"must be instants from {EARLIEST_DAY} to {LATEST_DAY}, the first not after the last"
        )
    return DateRange(start, end, first_day, last_day, zone)


def _parse_instant(text: str, zone: ZoneInfo) -> datetime | date:
    if len(text) == 10:
        return date.fromisoformat(text)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=zone)


def resolve(value: str | list[str], zone: ZoneInfo, now: datetime) -> DateRange:
    """The range a ``date_range`` value names; raises ValueError with the reason."""
    today = now.astimezone(zone).date()
    if isinstance(value, str):
        if value == "day":
            return _days(today, today, zone)
        if value == "24h":
            return _instants(now - timedelta(hours=24), now, zone)
        if value in ("7d", "28d", "30d", "91d"):
            return _days(today - timedelta(days=int(value[:-1]) - 1), today, zone)
        if value == "month":
            last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
            return _days(today.replace(day=1), last, zone)
        if value in ("6mo", "12mo"):
            first = _add_months(today, -(int(value[:-2]) - 1))
            last = today.replace(day=calendar.monthrange(today.year, today.month)[1])
            return _days(first, last, zone)
        if value == "year":
            return _days(date(today.year, 1, 1), date(today.year, 12, 31), zone)
        if value == "all":
            return _days(EARLIEST_DAY, today, zone)
        raise ValueError(f"unknown shortcut {value!r}: one of {', '.join(SHORTCUTS)}")
    if len(value) != 2 or not all(isinstance(v, str) for v in value):
        raise ValueError("a pair [first, last] of ISO 8601 dates or date-times")
    try:
        first, last = (_parse_instant(v, zone) for v in value)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"not ISO 8601 dates or date-times: {e}") from None
    if type(first) is date and type(last) is date:
        return _days(first, last, zone)
    if isinstance(first, datetime) and isinstance(last, datetime):
        return _instants(first, last, zone)
    raise ValueError("both ends must be dates, or both date-times")


def bucket_labels(interval: Interval, r: DateRange) -> list[str]:
    """Every time bucket label of the range, as the ``time`` dimensions write them."""
    first, last = r.first_day, r.last_day
    if interval == "month":
        labels, month = [], first.replace(day=1)
        while month <= last:
            labels.append(month.isoformat())
            month = _add_months(month, 1)
        return labels
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if interval == "day":
        return [d.isoformat() for d in days]
    if interval == "week":
        return [d.isoformat() for d in days if d == first or d.weekday() == 0]
    step = timedelta(hours=1) if interval == "hour" else timedelta(minutes=1)
    count = len(days) * (24 if interval == "hour" else 1440)
    if count > MAX_LABELS:
        raise ValueError(f"more than {MAX_LABELS} {interval} labels: choose a longer bucket")
    start = datetime.combine(first, time())
    return [(start + step * i).strftime("%Y-%m-%d %H:%M:%S") for i in range(count)]
