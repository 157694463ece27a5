"""Footprints for the footprint package's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from footprint.schema import Footprint

__all__ = ["sample_footprint"]


def sample_footprint(n: int = 0) -> Footprint:
    """A complete footprint of ``/posts/{n}``, dated 2026-11-22."""
    return Footprint(
        event_id=uuid4(),
        method="GET",
        link=f"/posts/{n}",
        footprint_time=datetime(2026, 11, 22, 9, 30, n % 60, tzinfo=UTC),
    )
