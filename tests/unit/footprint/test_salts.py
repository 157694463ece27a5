"""footprint/salts.py without Redis: one random salt per UTC day, kept in memory, never derived."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest

from footprint.keys import salt_key
from footprint.salts import SALT_BYTES, DailySalts
from footprint.settings import Settings, load_settings

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _salt(salts: DailySalts) -> bytes:
    return asyncio.run(salts.current())


def test_salt_is_random_bytes_kept_for_the_whole_utc_day() -> None:
    clock = Clock(datetime(2026, 11, 22, 0, 0, tzinfo=UTC))
    salts = DailySalts(None, clock=clock)
    first = _salt(salts)
    assert len(first) == SALT_BYTES
    for now in (NOON, datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC)):
        clock.now = now
        assert _salt(salts) == first


def test_salt_changes_when_the_utc_day_changes() -> None:
    clock = Clock(datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC))
    salts = DailySalts(None, clock=clock)
    before = _salt(salts)
    clock.now += timedelta(seconds=2)
    after = _salt(salts)
    assert after != before
    clock.now -= timedelta(seconds=2)  # a late footprint cannot bring yesterday's salt back
    assert _salt(salts) not in (before, after)


def test_salt_day_is_the_utc_day() -> None:
    # 01:00 in UTC+5 on the 23rd is 20:00 UTC on the 22nd: the same day as NOON.
    clock = Clock(NOON)
    salts = DailySalts(None, clock=clock)
    noon = _salt(salts)
    clock.now = datetime(2026, 11, 23, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    assert _salt(salts) == noon


def test_salt_is_not_derivable_from_the_configuration() -> None:
    # Two processes with the very same settings and clock, no shared store: different salts.
    settings = load_settings(redis_url=None, jwt_secret="unit-tests-secret-0123456789abcdef")
    a = _salt(DailySalts(settings.redis_url, clock=Clock(NOON)))
    b = _salt(DailySalts(settings.redis_url, clock=Clock(NOON)))
    assert a != b
    # Nor is it the old scheme's HMAC of the day under any configured value.
    day = NOON.date().isoformat().encode()
    for value in settings.model_dump().values():
        key = str(value).encode()
        assert hmac.new(key, day, hashlib.sha256).digest() not in (a, b)


def test_no_visitor_salt_secret_setting_remains() -> None:
    assert "visitor_salt_secret" not in Settings.model_fields


def test_unreachable_redis_gives_a_local_salt_without_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    salts = DailySalts("redis://127.0.0.1:1/0", clock=Clock(NOON))
    first = _salt(salts)
    assert len(first) == SALT_BYTES
    assert not salts.shared
    assert "Redis unreachable" in caplog.text
    caplog.clear()
    # Kept for the day and not asked again at once: one warning per retry period, same ids.
    assert _salt(salts) == first
    assert "Redis unreachable" not in caplog.text


def test_concurrent_requests_share_one_redis_attempt(caplog: pytest.LogCaptureFixture) -> None:
    salts = DailySalts("redis://127.0.0.1:1/0", clock=Clock(NOON))

    async def many() -> list[bytes]:
        return await asyncio.gather(*(salts.current() for _ in range(20)))

    got = asyncio.run(many())
    assert len(set(got)) == 1
    assert caplog.text.count("Redis unreachable") == 1


def test_salt_key_names_the_day() -> None:
    assert salt_key(NOON.date()) == "footprint:salt:2026-11-22"
