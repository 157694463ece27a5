"""ClickHouse sink: ``user_footprint`` for analytics, by native protocol or embedded chdb.

The driver is synchronous, so a batch is inserted in a worker thread. The table is a
ReplacingMergeTree keyed by event id: a replayed batch collapses on merge and ``FINAL`` reads
are exact. The per-minute rollup is fed by a materialized view, so each footprint must be
inserted once: after a crash, in-doubt footprints are checked against the table first.

Errors are classified by ClickHouse error code (``REFUSED_CODES``), the same on both backends
(``footprint.clickhouse.ClickHouseError.code``): a refused batch is split by the agent until the
refused footprints are alone; anything else is an outage, retried.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from footprint.clickhouse import ClickHouse, ClickHouseError, connect
from footprint.schema import FIELDS
from footprint.wire import AnyFootprint
from streams.sinks.base import Batch, SinkError, StoreRefused, StoreUnavailable

__all__ = ["COLUMNS", "REFUSED_CODES", "ClickHouseSink", "by_month", "classify", "columns"]

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


def by_month(
    footprints: Sequence[AnyFootprint],
) -> dict[tuple[int, int], list[AnyFootprint]]:
    """Footprints grouped by the (year, month) of their time: the table's partitions."""
    months: dict[tuple[int, int], list[AnyFootprint]] = {}
    for fp in footprints:
        t = fp.footprint_time
        assert t is not None
        months.setdefault((t.year, t.month), []).append(fp)
    return months


# ClickHouse error codes (src/Common/ErrorCodes.cpp; clickhouse_driver.errors.ErrorCodes)
# that mean "these rows", not "this server": the same rows would fail again. Everything else
# (159 timeout, 202 too many simultaneous queries, 209/210 socket and network errors, 241
# memory limit, 242 read-only table, 243 no disk space, 252 too many parts, 60 a missing
# table…) and any error without a code is taken as an outage and retried: when unsure, the
# worker waits rather than dead-letter a good footprint.
REFUSED_CODES: dict[int, str] = {
    6: "CANNOT_PARSE_TEXT",
    26: "CANNOT_PARSE_QUOTED_STRING",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    38: "CANNOT_PARSE_DATE",
    41: "CANNOT_PARSE_DATETIME",
    53: "TYPE_MISMATCH",
    69: "ARGUMENT_OUT_OF_BOUND",
    70: "CANNOT_CONVERT_TYPE",
    72: "CANNOT_PARSE_NUMBER",
    117: "INCORRECT_DATA",
    131: "TOO_LARGE_STRING_SIZE",
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
    469: "VIOLATED_CONSTRAINT",
}
# 252 (TOO_MANY_PARTS) is both "too many parts, merges are behind" (an overload: retry) and
# "too many partitions for single INSERT block" (this block spans more than
# max_partitions_per_insert_block months: the same block always fails). Inserts are split by
# month so the second should not happen; if it does, it is the data's doing.
_TOO_MANY_PARTS = 252
_PARTITIONS = "partitions for single insert block"


def classify(e: BaseException) -> SinkError | None:
    """The kind of a ClickHouse failure, or None for an exception of the worker's own."""
    message = str(e).strip().split("\n")[0]
    if isinstance(e, ClickHouseError):
        if e.code in REFUSED_CODES or (
            e.code == _TOO_MANY_PARTS and _PARTITIONS in message.lower()
        ):
            return StoreRefused("clickhouse", message)
        if isinstance(e.__cause__, TypeError | ValueError | OverflowError | struct.error):
            # The client could not serialise a value for its column (e.g. out of range).
            return StoreRefused("clickhouse", message)
        return StoreUnavailable("clickhouse", message)
    if isinstance(e, OSError | EOFError):  # TimeoutError and ConnectionError are OSErrors
        return StoreUnavailable("clickhouse", f"{type(e).__name__}: {message}")
    return None


_IS_BOT = FIELDS.index("is_bot")
_TIME = FIELDS.index("footprint_time")
_GETTERS = [attrgetter(name) for name in FIELDS]


def columns(footprints: Sequence[AnyFootprint], now: datetime) -> list[list[Any]]:
    """The footprints' values column by column, in ``COLUMNS`` order (``is_bot`` as UInt8, props
    as two arrays).

    Each column is read with one C loop (``map`` over an ``attrgetter``), not footprint by
    footprint. The ``DateTime`` columns get epoch seconds (floored), as both clients take them:
    the native driver would otherwise convert each datetime through its time zone.
    """
    data = [list(map(get, footprints)) for get in _GETTERS]
    data[_IS_BOT] = list(map(int, data[_IS_BOT]))
    data[_TIME] = [_seconds(t) for t in data[_TIME]]
    props = data[_PROPS]
    data[_PROPS : _PROPS + 1] = [list(map(list, props)), [list(p.values()) for p in props]]
    data.append([_seconds(now)] * len(footprints))
    return data


def _seconds(t: datetime) -> int:
    """An aware datetime as whole epoch seconds (the second it falls in)."""
    return int(t.timestamp() // 1)


class ClickHouseSink:
    """Batched inserts of footprints into ClickHouse."""

    name = "clickhouse"
    keeps_footprints = True

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
                raise StoreUnavailable("clickhouse", f"cannot connect: {e}") from e

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
            # Earlier months of the batch may be in: the next write checks before inserting.
            self._suspect = True
            error = classify(e)
            if not isinstance(error, StoreRefused):
                await self.close()
            if error is None:
                raise  # a bug of ours: reported as such by the caller
            raise error from e
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
            client.insert_columns("user_footprint", COLUMNS, columns(month, ingested))

    async def close(self) -> None:
        """Close the connection."""
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)
