"""retry_forever: outages retried, refusals raised at once, bugs reported loudly, cancellable."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from streams import retry
from streams.retry import retry_forever
from streams.sinks.base import StoreRefused, StoreUnavailable
from streams.status import status


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_BACKOFF", 0.001)


def failing(*errors: Exception) -> tuple[Callable[[], object], list[int]]:
    """An attempt that raises ``errors`` in turn, then returns "done"; and its call count."""
    calls = [0]

    async def attempt() -> str:
        calls[0] += 1
        if calls[0] <= len(errors):
            raise errors[calls[0] - 1]
        return "done"

    return attempt, calls


def test_an_outage_is_retried_and_shown_as_unavailable() -> None:
    seen: list[str] = []
    attempt, calls = failing(StoreUnavailable("pg-a", "connection refused"))

    async def watched() -> object:
        seen.append(status.sinks.get("pg-a", ""))
        return await attempt()  # type: ignore[misc]

    assert asyncio.run(retry_forever("pg-a", watched)) == "done"
    assert calls[0] == 2
    assert seen == ["", "unavailable"]
    assert status.sinks["pg-a"] == "ok"
    assert status.failures["pg-a"] == {"unavailable": 1, "refused": 0, "bug": 0}


def test_a_refusal_is_not_retried() -> None:
    attempt, calls = failing(StoreRefused("pg-b", "value too long"))
    with pytest.raises(StoreRefused, match="value too long"):
        asyncio.run(retry_forever("pg-b", attempt))  # type: ignore[arg-type]
    assert calls[0] == 1


def test_a_bug_is_logged_with_its_traceback_and_shown_apart_from_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    attempt, _ = failing(KeyError("visitor_id"), KeyError("visitor_id"))

    async def watched() -> object:
        seen.append(status.sinks.get("ch-c", ""))
        return await attempt()  # type: ignore[misc]

    with caplog.at_level(logging.ERROR, logger="streams.retry"):
        assert asyncio.run(retry_forever("ch-c", watched)) == "done"
    assert seen == ["", "bug", "bug"]
    assert status.failures["ch-c"]["bug"] == 2
    assert status.failures["ch-c"]["unavailable"] == 0
    assert status.last_bug is not None
    assert "KeyError" in status.last_bug and "test_retry.py:" in status.last_bug
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info for r in errors), "ERROR with traceback"


def test_the_bug_backoff_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(retry, "FIRST_BACKOFF", 1.0)
    monkeypatch.setattr(retry.asyncio, "sleep", sleep)
    attempt, _ = failing(*[ValueError("bug")] * 12)
    asyncio.run(retry_forever("ch-d", attempt))  # type: ignore[arg-type]
    assert max(slept) == retry.MAX_BUG_BACKOFF
    assert slept[:3] == [1.0, 2.0, 4.0]


def test_cancellation_during_the_backoff_propagates_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retry, "FIRST_BACKOFF", 60.0)

    async def down() -> None:
        raise StoreUnavailable("pg-e", "down")

    async def main() -> float:
        task = asyncio.create_task(retry_forever("pg-e", down))
        while status.sinks.get("pg-e") != "unavailable":  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)  # until the attempt failed: then it is in its 60 s backoff
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - began

    assert asyncio.run(main()) < 0.5
