"""PostgreSQL sink: ``user_footprint``, the system of record.

Each batch is COPYed into a temporary staging table and moved with
``INSERT … ON CONFLICT (event_id) DO NOTHING``: one round trip per batch, and a replayed event
creates no second row.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from schemas.footprint import Footprint
from streams.sinks.base import Batch, SinkError

__all__ = ["COLUMNS", "PostgresSink", "PostgresSinkError"]

COLUMNS: tuple[str, ...] = tuple(Footprint.model_fields)

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS footprint_stage ON COMMIT DELETE ROWS AS "
    f"SELECT {', '.join(COLUMNS)} FROM user_footprint WITH NO DATA"
)
_MOVE = (
    f"INSERT INTO user_footprint ({', '.join(COLUMNS)}) "
    f"SELECT {', '.join(COLUMNS)} FROM footprint_stage "
    "ON CONFLICT (event_id) DO NOTHING"
)
_COPY = f"COPY footprint_stage ({', '.join(COLUMNS)}) FROM STDIN"


class PostgresSinkError(SinkError):
    """PostgreSQL refused or lost a batch."""


def rows(footprints: Sequence[Footprint]) -> list[tuple[object, ...]]:
    """Footprints as tuples in ``COLUMNS`` order."""
    return [tuple(getattr(fp, c) for c in COLUMNS) for fp in footprints]


class PostgresSink:
    """Batched, idempotent writes of footprints to PostgreSQL."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.AsyncConnection | None = None

    async def open(self) -> None:
        """Connect and prepare the session's staging table."""
        if self._conn is not None and not self._conn.closed:
            return
        try:
            self._conn = await psycopg.AsyncConnection.connect(self.url, connect_timeout=5)
            async with self._conn.transaction():
                await self._conn.execute(_STAGE)
        except psycopg.Error as e:
            await self.close()
            raise PostgresSinkError(f"cannot connect to PostgreSQL: {e}") from e

    async def write(self, batch: Batch) -> None:
        """COPY the batch and move it into user_footprint in one transaction."""
        if not batch.footprints:
            return
        await self.open()
        assert self._conn is not None
        try:
            async with self._conn.transaction(), self._conn.cursor() as cur:
                async with cur.copy(_COPY) as copy:
                    for row in rows(batch.footprints):
                        await copy.write_row(row)
                await cur.execute(_MOVE)
        except psycopg.Error as e:
            await self.close()
            raise PostgresSinkError(f"PostgreSQL write failed: {e}") from e

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            try:
                await self._conn.close()
            finally:
                self._conn = None
