"""The worker's stores, one backend per module, behind the contracts in ``base``.

Every pass has two steps: the record *claims* the batch first, then the stores after it are
written with what the record answered. For footprints the record is PostgreSQL — it stores each
event once and says which copy counts — and ClickHouse and Redis are written with the claimed
footprints and the window counts. For notifications the record is the PostgreSQL inbox — one
row per recipient — and the Redis fan-out delivers its rows (``notifications``).
``memory`` holds in-memory stores for unit tests of the passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from footprint.settings import Settings
from streams.sinks.base import (
    Batch,
    Claim,
    Claimer,
    Delivery,
    FanOut,
    Inbox,
    Sink,
    SinkError,
    Store,
    StoreRefused,
    StoreUnavailable,
    WindowCount,
)

__all__ = [
    "Batch",
    "Claim",
    "Claimer",
    "Delivery",
    "FanOut",
    "Inbox",
    "NotificationStores",
    "Sink",
    "SinkError",
    "Store",
    "StoreRefused",
    "StoreUnavailable",
    "Stores",
    "WindowCount",
    "build_notification_stores",
    "build_stores",
]


async def close_all(stores: Sequence[Store]) -> None:
    """Close every store, whatever fails."""
    for store in stores:
        with contextlib.suppress(Exception):  # closing is best effort
            await store.close()


@dataclass(frozen=True)
class Stores:
    """The footprints' claim step's store, and the stores written after it."""

    record: Claimer
    others: tuple[Sink, ...]

    async def close(self) -> None:
        """Close every store, whatever fails."""
        await close_all([self.record, *self.others])


@dataclass(frozen=True)
class NotificationStores:
    """The notifications' inbox (the record), and the fan-out written after it."""

    inbox: Inbox
    fan_out: FanOut

    async def close(self) -> None:
        """Close both stores, whatever fails."""
        await close_all([self.inbox, self.fan_out])


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


def build_notification_stores(settings: Settings) -> NotificationStores:
    """The PostgreSQL inbox, then the Redis fan-out, from the settings' URLs."""
    from streams.sinks.notifications import PostgresInbox, RedisFanOut

    days = settings.notification_retention_days
    return NotificationStores(
        inbox=PostgresInbox(settings.require("postgres_url"), retention_days=days),
        fan_out=RedisFanOut(
            settings.require("redis_url"), inbox_size=settings.inbox_size, retention_days=days
        ),
    )
