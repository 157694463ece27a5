"""footprint/timepolicy.py and ``footprint backfill``'s preparation: pure logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from footprint.cli.backfill import prepare
from footprint.settings import SettingsError, load_settings
from footprint.timepolicy import TimePolicy, is_backfill

SENT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_live_times_pass_and_the_reason_names_the_bound() -> None:
    policy = TimePolicy()
    assert policy.violation(SENT, SENT) is None
    assert policy.violation(SENT - timedelta(days=7), SENT) is None
    assert policy.violation(SENT + timedelta(minutes=5), SENT) is None
    old = policy.violation(SENT - timedelta(days=7, seconds=1), SENT)
    assert old is not None and old.startswith("more than 7 days before it was sent")
    assert "footprint backfill" in old
    ahead = policy.violation(SENT + timedelta(minutes=5, seconds=1), SENT)
    assert ahead == "more than 5 minutes ahead of when it was sent"


def test_bounds_match_violation() -> None:
    policy = TimePolicy(timedelta(hours=2), timedelta(seconds=30))
    lo, hi = policy.bounds(SENT.timestamp())
    assert lo == (SENT - timedelta(hours=2)).timestamp()
    assert hi == (SENT + timedelta(seconds=30)).timestamp()
    assert "2 hours" in (policy.violation(SENT - timedelta(hours=3), SENT) or "")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, False),
        ([], False),
        ([("footprint-backfill", b"1")], True),
        ((("other", b"1"), ("footprint-backfill", b"true")), True),
        ({"footprint-backfill": b"1"}, True),
        ([("footprint-backfill", b"0")], False),
        ([("footprint-backfill", b"")], False),
        ([("Footprint-Backfill-X", b"1")], False),
    ],
)
def test_the_backfill_header(headers: object, expected: bool) -> None:
    assert is_backfill(headers) is expected  # type: ignore[arg-type]


def test_the_policy_comes_from_settings() -> None:
    s = load_settings(event_max_age="30d", event_max_ahead="00:01:00")
    assert s.time_policy == TimePolicy(timedelta(days=30), timedelta(minutes=1))
    with pytest.raises(SettingsError, match="FOOTPRINT_EVENT_MAX_AHEAD: .*at most 5 minutes"):
        load_settings(event_max_ahead="1:00:00")
    with pytest.raises(SettingsError, match="FOOTPRINT_EVENT_MAX_AGE: .*negative"):
        load_settings(event_max_age="-1d")


def test_backfill_lines_get_the_same_id_every_time_and_distinct_ids_per_line() -> None:
    line = b'{"method": "GET", "link": "/a", "footprint_time": "2025-01-01T09:00:00+09:00"}'
    first, again, next_line = prepare(1, line), prepare(1, line), prepare(2, line)
    assert first.event_id == again.event_id != next_line.event_id
    assert first.event_id is not None and first.event_id.version == 8
    # Led by the footprint's time, like every other id: the stores' indexes grow at one end.
    assert first.event_id.int >> 80 == int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
    keeps = prepare(1, line[:-1] + b', "event_id": "0192a1b2-0000-7000-8000-000000000001"}')
    assert str(keeps.event_id) == "0192a1b2-0000-7000-8000-000000000001"
