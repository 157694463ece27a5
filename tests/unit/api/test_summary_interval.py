"""The summary's interval: which one auto picks, and hours and days folded from the stores'
15-minute UTC counts in the requested time zone (DST days, half-hour offsets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.summary import Period, _fill, pick_interval

T0 = datetime(2026, 3, 7, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(minutes=1), "15m"),
        (timedelta(days=1), "15m"),
        (timedelta(days=1, seconds=1), "hour"),
        (timedelta(days=7), "hour"),
        (timedelta(days=7, seconds=1), "day"),
        (timedelta(days=366), "day"),
    ],
)
def test_auto_picks_by_the_periods_length(span: timedelta, expected: str) -> None:
    assert pick_interval("auto", T0, T0 + span) == expected


def test_an_explicit_interval_is_kept_and_nonsense_refused() -> None:
    assert pick_interval("15m", T0, T0 + timedelta(days=30)) == "15m"
    assert pick_interval("day", T0, T0 + timedelta(hours=1)) == "day"
    with pytest.raises(ValueError, match="auto, 15m, hour, day"):
        pick_interval("week", T0, T0 + timedelta(days=1))


def _rows(counts: dict[datetime, int]) -> list[tuple[datetime, int]]:
    return sorted(counts.items())


def test_hours_in_utc_sum_their_quarters() -> None:
    period = Period(T0, T0 + timedelta(hours=3), ())
    rows = _rows({T0: 1, T0 + timedelta(minutes=45): 2, T0 + timedelta(hours=2, minutes=15): 5})
    assert _fill(rows, period, ZoneInfo("UTC"), "hour") == [
        {"start": "2026-03-07T00:00:00+00:00", "count": 3},
        {"start": "2026-03-07T01:00:00+00:00", "count": 0},
        {"start": "2026-03-07T02:00:00+00:00", "count": 5},
    ]


def test_hours_at_a_half_hour_offset_start_at_half_past_utc() -> None:
    period = Period(T0, T0 + timedelta(hours=2), ())
    # 00:15 UTC is 05:45 in Kolkata (the 05:00 hour), 00:30 UTC is 06:00 (the next one).
    rows = _rows({T0 + timedelta(minutes=15): 1, T0 + timedelta(minutes=30): 10})
    assert _fill(rows, period, ZoneInfo("Asia/Kolkata"), "hour") == [
        {"start": "2026-03-07T05:00:00+05:30", "count": 1},
        {"start": "2026-03-07T06:00:00+05:30", "count": 10},
        {"start": "2026-03-07T07:00:00+05:30", "count": 0},
    ]


def test_days_are_local_days_and_a_dst_day_has_23_hours() -> None:
    # New York springs forward on 2026-03-08: that day is 23 hours long.
    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 7, tzinfo=ny).astimezone(UTC)
    end = datetime(2026, 3, 10, tzinfo=ny).astimezone(UTC)
    period = Period(start, end, ())
    quarter = timedelta(minutes=15)
    every = {start + quarter * i: 1 for i in range(int((end - start) / quarter))}
    assert _fill(_rows(every), period, ny, "day") == [
        {"start": "2026-03-07T00:00:00-05:00", "count": 96},
        {"start": "2026-03-08T00:00:00-05:00", "count": 92},
        {"start": "2026-03-09T00:00:00-04:00", "count": 96},
    ]


def test_the_repeated_hour_of_a_dst_change_is_two_buckets() -> None:
    ny = ZoneInfo("America/New_York")
    # 2026-11-01 01:00–02:00 happens twice in New York: 05:00–06:00 and 06:00–07:00 UTC.
    start = datetime(2026, 11, 1, 5, tzinfo=UTC)
    period = Period(start, start + timedelta(hours=2), ())
    rows = _rows({start: 1, start + timedelta(hours=1): 2})
    assert _fill(rows, period, ny, "hour") == [
        {"start": "2026-11-01T01:00:00-04:00", "count": 1},
        {"start": "2026-11-01T01:00:00-05:00", "count": 2},
    ]


def test_fifteen_minutes_are_unchanged() -> None:
    period = Period(T0 + timedelta(minutes=5), T0 + timedelta(minutes=35), ())
    assert _fill(_rows({T0 + timedelta(minutes=15): 4}), period, ZoneInfo("Asia/Seoul")) == [
        {"start": "2026-03-07T09:00:00+09:00", "count": 0},
        {"start": "2026-03-07T09:15:00+09:00", "count": 4},
        {"start": "2026-03-07T09:30:00+09:00", "count": 0},
    ]
