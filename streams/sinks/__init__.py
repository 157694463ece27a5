"""The worker's stores, one backend per module, behind the contracts in ``base``.

Every pass has two steps: the system of record (PostgreSQL) *claims* the batch first — it
stores each event once and says which copy counts — then every other store is written with the
claimed footprints and the window counts.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from footprint.settings import Settings
from streams.sinks.base import Batch, Claim, Claimer, ListSink, Sink, SinkError, WindowCount

__all__ = [
    "Batch",
    "Claim",
    "Claimer",
    "ListSink",
    "Sink",
    "SinkError",
    "Stores",
    "WindowCount",
    "build_stores",
]


@dataclass(frozen=True)
class Stores:
    """The claim step's store, and the stores written after it."""

    record: Claimer
    others: tuple[Sink, ...]

    async def close(self) -> None:
        """Close every store, whatever fails."""
        stores: list[Claimer | Sink] = [self.record, *self.others]
        for store in stores:
            with contextlib.suppress(Exception):  # closing is best effort
                await store.close()


def build_stores(settings: Settings) -> Stores:
    """PostgreSQL as the record, then ClickHouse and Redis, from the settings' URLs."""
    from streams.sinks.clickhouse import ClickHouseSink
    from streams.sinks.postgres import PostgresSink
    from streams.sinks.redis import RedisSink

    return Stores(
        record=PostgresSink(settings.require("postgres_url")),
        others=(
            ClickHouseSink(settings.require("clickhouse_url")),
            RedisSink(settings.require("redis_url"), max_links=settings.live_max_links),
        ),
    )
