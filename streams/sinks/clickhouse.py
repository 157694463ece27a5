"""ClickHouse sink: ``user_footprint`` for analytics, by native protocol or embedded chdb.

The driver is synchronous, so a batch is inserted in a worker thread. The table is a
ReplacingMergeTree keyed by event id: a replayed batch collapses on merge and ``FINAL`` reads
are exact. The per-minute rollup is fed by a materialized view, so each footprint must be
inserted once: after a crash, in-doubt footprints are checked against the table first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from footprint.clickhouse import ClickHouse, connect
from schemas.footprint import FIELDS, Footprint, field_values
from streams.sinks.base import Batch, SinkError

__all__ = ["COLUMNS", "ClickHouseSink", "ClickHouseSinkError", "by_month"]

CHECK_CHUNK = 2000  # event ids per in-doubt check: ~100 KB of query text

_PROPS = FIELDS.index("props")
# Props are stored as two parallel arrays (a Nested column): every ClickHouse version has them.
COLUMNS: tuple[str, ...] = (
    *FIELDS[:_PROPS],
    "props.key",
    "props.value",
    *FIELDS[_PROPS + 1 :],
    "ingested_at",
)


def by_month(footprints: Sequence[Footprint]) -> dict[tuple[int, int], list[Footprint]]:
    """Footprints grouped by the (year, month) of their time: the table's partitions."""
    months: dict[tuple[int, int], list[Footprint]] = {}
    for fp in footprints:
        t = fp.footprint_time
        assert t is not None
        months.setdefault((t.year, t.month), []).append(fp)
    return months


class ClickHouseSinkError(SinkError):
    """ClickHouse refused or lost a batch."""


_IS_BOT = FIELDS.index("is_bot")


def rows(footprints: Sequence[Footprint], now: datetime) -> list[tuple[object, ...]]:
    """Footprints as tuples in ``COLUMNS`` order (``is_bot`` as UInt8, props as two arrays)."""
    out: list[tuple[object, ...]] = []
    for fp in footprints:
        row = list(field_values(fp))
        row[_IS_BOT] = int(row[_IS_BOT])
        props = fp.props
        row[_PROPS : _PROPS + 1] = [list(props), list(props.values())]
        row.append(now)
        out.append(tuple(row))
    return out


class ClickHouseSink:
    """Batched inserts of footprints into ClickHouse."""

    name = "clickhouse"

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: ClickHouse | None = None
        self._suspect = False

    async def open(self) -> None:
        """Connect (lazily for the native driver, once per process for chdb)."""
        if self._client is None:
            try:
                self._client = await asyncio.to_thread(connect, self.url)
            except Exception as e:
                raise ClickHouseSinkError(f"cannot connect to ClickHouse: {e}") from e

    async def write(self, batch: Batch) -> None:
        """Insert the batch, less the in-doubt footprints ClickHouse already holds."""
        if not batch.footprints:
            return
        await self.open()
        assert self._client is not None
        if self._suspect:
            # The last insert failed, maybe after the server took it: check before inserting.
            ids = frozenset(fp.event_id for fp in batch.footprints if fp.event_id)
            batch = replace(batch, in_doubt=ids)
        try:
            await asyncio.to_thread(self._write, self._client, batch)
        except Exception as e:
            self._suspect = True
            await self.close()
            raise ClickHouseSinkError(f"ClickHouse insert failed: {e}") from e
        self._suspect = False

    @staticmethod
    def _write(client: ClickHouse, batch: Batch) -> None:
        footprints = list(batch.footprints)
        if batch.in_doubt:
            # Only after a crash: the rollup view counts every insert, so a footprint written
            # before the crash must not be inserted again.
            doubtful = [fp for fp in footprints if fp.event_id in batch.in_doubt]
            held: set[Any] = set()
            # In chunks: a query is limited in size (max_query_size, 256 KiB by default).
            for i in range(0, len(doubtful), CHECK_CHUNK):
                chunk = doubtful[i : i + CHECK_CHUNK]
                held.update(
                    row[0]
                    for row in client.execute(
                        "SELECT event_id FROM user_footprint WHERE event_id IN %(ids)s "
                        "AND footprint_time >= toDateTime(%(lo)s, 'UTC') "
                        "AND footprint_time <= toDateTime(%(hi)s, 'UTC')",
                        {
                            "ids": tuple(fp.event_id for fp in chunk),
                            "lo": datetime.fromtimestamp(
                                int(min(fp.timestamp for fp in chunk)), UTC
                            ),
                            "hi": datetime.fromtimestamp(
                                max(fp.timestamp for fp in chunk) + 1, UTC
                            ),
                        },
                    )
                )
            footprints = [fp for fp in footprints if fp.event_id not in held]
        ingested = datetime.now(UTC).replace(microsecond=0)
        # One insert per month: the table is partitioned by month and ClickHouse refuses an
        # insert block spanning more than 100 partitions (code 252), e.g. a backfill of years.
        for month in by_month(footprints).values():
            client.insert("user_footprint", COLUMNS, rows(month, ingested))

    async def close(self) -> None:
        """Close the connection."""
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)
