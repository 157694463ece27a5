"""The retention's arithmetic: whole UTC days, whole months dropped, the longest retention wins."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from footprint.retention import Policy, _deletes, _drop_before, cutoff, months_past
from footprint.settings import Settings, SettingsError, load_settings

NOW = datetime(2026, 3, 15, 17, 30, tzinfo=UTC)


def test_days_are_whole_utc_days() -> None:
    assert cutoff(30, NOW) == datetime(2026, 2, 13, tzinfo=UTC)
    assert cutoff(0, NOW) is None  # for ever


def test_only_months_wholly_before_the_cutoff_are_dropped() -> None:
    months = [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert months_past(months, datetime(2026, 2, 13, tzinfo=UTC)) == months[:2]
    assert months_past(months, datetime(2026, 2, 1, tzinfo=UTC)) == months[:2]
    assert months_past(months, None) == []


def test_a_site_keeping_longer_holds_the_partitions_back() -> None:
    assert _drop_before(Policy(30, site_days={"a.com": 400}), NOW) == cutoff(400, NOW)
    assert _drop_before(Policy(30, site_days={"a.com": 7}), NOW) == cutoff(30, NOW)
    assert _drop_before(Policy(0, site_days={"a.com": 7}), NOW) is None


def test_sites_with_their_own_retention_are_left_out_of_the_default_one() -> None:
    deletes = _deletes(Policy(30, site_days={"a.com": 7}), NOW)
    assert [(c, p) for c, p, _ in deletes] == [
        ("site = %(s0)s AND footprint_time < %(t0)s", {"s0": "a.com", "t0": cutoff(7, NOW)}),
        (
            "site NOT IN (%(o0)s) AND footprint_time < %(tg)s",
            {"o0": "a.com", "tg": cutoff(30, NOW)},
        ),
    ]


def test_rollups_must_outlive_raw_footprints() -> None:
    assert load_settings(raw_retention_days=30, rollup_retention_days=400).rollup_retention_days
    with pytest.raises((SettingsError, ValueError), match="RAW_RETENTION_DAYS"):
        load_settings(raw_retention_days=30, rollup_retention_days=7)
    with pytest.raises((SettingsError, ValueError), match="RAW_RETENTION_DAYS"):
        load_settings(raw_retention_days=0, rollup_retention_days=7)
    assert isinstance(load_settings(), Settings)
