"""Sample values for the footprint package's unit tests: footprints, server URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from footprint.schema import Footprint

__all__ = ["VALID", "sample_footprint"]

# A well-formed FOOTPRINT_* URL for every server (none is reached).
VALID = {
    "FOOTPRINT_KAFKA_URL": "kafka://127.0.0.1:9092",
    "FOOTPRINT_POSTGRES_URL": "postgresql://footprint:secret@127.0.0.1:5432/footprint",
    "FOOTPRINT_CLICKHOUSE_URL": "clickhouse://default:@127.0.0.1:9000/footprint",
    "FOOTPRINT_REDIS_URL": "redis://127.0.0.1:6379/0",
}


def sample_footprint(n: int = 0) -> Footprint:
    """A complete footprint of ``/posts/{n}``, dated 2026-11-22."""
    return Footprint(
        event_id=uuid4(),
        method="GET",
        link=f"/posts/{n}",
        footprint_time=datetime(2026, 11, 22, 9, 30, n % 60, tzinfo=UTC),
    )
