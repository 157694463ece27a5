"""The worker's sinks, one backend per module, behind the protocol in ``base``."""

from __future__ import annotations

from footprint.settings import Settings
from streams.sinks.base import Batch, ListSink, Sink, SinkError, WindowCount

__all__ = ["Batch", "ListSink", "Sink", "SinkError", "WindowCount", "build_sinks"]


def build_sinks(settings: Settings) -> list[Sink]:
    """PostgreSQL, ClickHouse and Redis, in that order, from the settings' URLs."""
    from streams.sinks.clickhouse import ClickHouseSink
    from streams.sinks.postgres import PostgresSink
    from streams.sinks.redis import RedisSink

    return [
        PostgresSink(settings.require("postgres_url")),
        ClickHouseSink(settings.require("clickhouse_url")),
        RedisSink(settings.require("redis_url"), max_links=settings.live_max_links),
    ]
