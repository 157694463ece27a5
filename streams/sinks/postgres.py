"""PostgreSQL sink: ``user_footprint``, the system of record, and the arbiter of duplicates.

Each batch is COPYed into a temporary staging table and moved with
``INSERT … ON CONFLICT (event_id, footprint_time) DO NOTHING``: one round trip per batch, and an
event (its copies share their time) creates one row however often it is delivered. The row
remembers the (partition, offset) it was read from; ``claim`` tells the worker which copies in
a batch are the stored ones, so a duplicate message (a producer's retry lands at a new offset) is
counted nowhere else either.

Errors are classified by SQLSTATE (``REFUSED``): a batch PostgreSQL refuses is split by the
agent until the refused footprints are alone; anything else it says is an outage, retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast
from uuid import UUID

import msgspec
import psycopg
from psycopg.types.json import set_json_dumps

from footprint.schema import FIELDS, field_values
from footprint.wire import AnyFootprint
from streams.sinks.base import Batch, Claim, SinkError, StoreRefused, StoreUnavailable

__all__ = ["COLUMNS", "REFUSED", "Claim", "PostgresSink", "classify"]

COLUMNS: tuple[str, ...] = (*FIELDS, "source_partition", "source_offset")

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS footprint_stage ON COMMIT DELETE ROWS AS "
    f"SELECT {', '.join(COLUMNS)} FROM user_footprint WITH NO DATA"
)
_MOVE = (
    f"INSERT INTO user_footprint ({', '.join(COLUMNS)}) "
    f"SELECT {', '.join(COLUMNS)} FROM footprint_stage "
    # The time is part of the key: the table is partitioned by it (sql/postgres/006).
    "ON CONFLICT (event_id, footprint_time) DO NOTHING"
)
# The stored copy of each event, and whether this transaction created it (the row's xmin).
_STORED = (
    "SELECT event_id, source_partition, source_offset, xmin = pg_current_xact_id()::xid "
    "FROM user_footprint WHERE event_id = ANY(%s)"
)
# Binary COPY: psycopg's C dumpers write UUIDs, times and numbers as they are (~3× less Python
# time per row than the text format, measured).
_COPY = f"COPY footprint_stage ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_TYPES = (
    "SELECT attname, atttypid::regtype::text FROM pg_attribute "
    "WHERE attrelid = 'footprint_stage'::regclass AND attnum > 0 AND NOT attisdropped"
)


# SQLSTATEs (a two-character class, or one full code) that mean "these rows", not "this
# server": sending the same rows again can only fail again. Everything else PostgreSQL or the
# driver says (class 08 connection, 53 resources such as too many connections, 57 operator
# intervention such as admin shutdown or a statement timeout, 40 serialization, 42 a missing
# table before migrations ran, no SQLSTATE at all for a refused connection) is taken as an
# outage and retried: when unsure, the worker waits, because a wrong refusal would dead-letter
# a good footprint out of every store.
REFUSED: dict[str, str] = {
    "22": "data exception: a value too long, out of range, an invalid byte sequence",
    "23": "integrity constraint: NOT NULL, CHECK, a unique key other than event_id",
    "54000": "program limit exceeded: a row too large for an index (a long multi-byte link)",
}


def classify(e: psycopg.Error | TimeoutError, store: str = "postgres") -> SinkError:
    """The kind of a PostgreSQL failure, with the server's own message, for ``store``."""
    state = getattr(e, "sqlstate", None) or ""
    diag = getattr(e, "diag", None)
    message = (diag.message_primary if diag is not None else None) or str(e).split("\n")[0]
    if state[:2] in REFUSED or state in REFUSED:
        return StoreRefused(store, message)
    if isinstance(e, psycopg.DataError | psycopg.IntegrityError):
        # Raised by the driver itself (no SQLSTATE), e.g. a value it cannot dump.
        return StoreRefused(store, message)
    return StoreUnavailable(store, f"{type(e).__name__}: {message or 'timed out'}")


def rows(footprints: Sequence[AnyFootprint], sources: Sequence[tuple[int, int]]) -> list[tuple]:
    """Footprints as tuples in ``COLUMNS`` order."""
    if not sources:
        sources = [(-1, -1)] * len(footprints)
    return [
        (*field_values(fp), partition, offset)
        for fp, (partition, offset) in zip(footprints, sources, strict=True)
    ]


class PostgresSink:
    """Batched, idempotent writes of footprints to PostgreSQL."""

    name = "postgres"
    keeps_footprints = True

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._conn: psycopg.AsyncConnection | None = None
        self._types: list[str] = []

    async def open(self) -> None:
        """Connect and prepare the session's staging table."""
        if self._conn is not None and not self._conn.closed:
            return
        try:
            self._conn = await psycopg.AsyncConnection.connect(self.url, connect_timeout=5)
            # Every footprint's props go in as jsonb: msgspec's encoder, not json.dumps (which
            # was ~12 % of the worker's time in the profile). The same JSON: keys in order.
            set_json_dumps(msgspec.json.encode, self._conn)
            async with self._conn.transaction():
                await self._conn.execute(_STAGE)
                cur = await self._conn.execute(_TYPES)
                types: dict[str, str] = dict(await cur.fetchall())
            self._types = [types[c] for c in COLUMNS]
        except psycopg.Error as e:
            await self.close()
            raise StoreUnavailable("postgres", f"cannot connect: {e}") from e

    async def write(self, batch: Batch) -> None:
        """COPY the batch and move it into user_footprint in one transaction."""
        await self.claim(batch)

    async def claim(self, batch: Batch) -> tuple[set[Claim], set[UUID]]:
        """Store the batch; return the stored copy of every event in it, and the ids it created.

        An event that was already stored (a replay, or a duplicate copy) has its stored copy
        looked up, so the caller can tell the copy that counts from the others.
        """
        if not batch.footprints:
            return set(), set()
        await self.open()
        assert self._conn is not None
        try:
            async with asyncio.timeout(self.timeout):
                claims, created = await self._claim(batch)
        except (psycopg.Error, TimeoutError) as e:
            # A server that stops answering (paused, partitioned) is an outage (TimeoutError).
            error = classify(e)
            if not isinstance(error, StoreRefused):
                # After a refusal the transaction was rolled back and the session is usable:
                # the agent's next, smaller batches reuse it.
                await self.close()
            raise error from e
        return claims, created

    async def _claim(self, batch: Batch) -> tuple[set[Claim], set[UUID]]:
        assert self._conn is not None
        async with self._conn.transaction(), self._conn.cursor() as cur:
            async with cur.copy(_COPY) as copy:
                copy.set_types(self._types)
                for row in rows(batch.footprints, batch.sources):
                    await copy.write_row(row)
            await cur.execute(_MOVE)
            # Not None: the column is NOT NULL, and the move above would have been refused.
            ids = cast(list[UUID], [fp.event_id for fp in batch.footprints])
            if cur.rowcount == len(ids):
                # Every row was new (the usual case): each footprint is its event's stored copy.
                # Nothing comes back from the server, and no UUID is parsed.
                sources = batch.sources or [(-1, -1)] * len(ids)
                return {(i, p, o) for i, (p, o) in zip(ids, sources, strict=True)}, set(ids)
            # Some events were stored already (a replay, a retried send) or repeat in the batch.
            await cur.execute(_STORED, (list(set(ids)),))
            stored = await cur.fetchall()
        return {(r[0], r[1], r[2]) for r in stored}, {r[0] for r in stored if r[3]}

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            try:
                await self._conn.close()
            finally:
                self._conn = None
