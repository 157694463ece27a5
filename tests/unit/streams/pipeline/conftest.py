"""The passes retry outages: with a short first backoff, a test's outages take milliseconds."""

from __future__ import annotations

import pytest

from streams import retry


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_BACKOFF", 0.001)
