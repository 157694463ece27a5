"""Run a checked query on one store and shape the answer as Plausible's Stats API v2 does."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from psycopg_pool import AsyncConnectionPool

from api.query.clickhouse import run_clickhouse
from api.query.metrics import AGGREGATES, display, scaled
from api.query.model import QueryMeta, QueryResponse, QueryRow
from api.query.plan import Plan
from api.query.postgres import run_postgres
from footprint.clickhouse import ClickHouse

__all__ = ["Source", "rows_to_results", "run"]

Source = Literal["postgres", "clickhouse"]
Rows = tuple[list[dict[str, Any]], dict[str, int]]


def rows_to_results(
    plan: Plan, rows: Sequence[Mapping[str, Any]], totals: Mapping[str, int]
) -> list[QueryRow]:
    """Result rows from a store's grouped counts: metrics in the order asked."""
    results = []
    for row in rows:
        counts = {a: int(row[a] or 0) for a in AGGREGATES} | dict(totals)
        results.append(
            QueryRow(
                metrics=[display(m, scaled(m, counts)) for m in plan.metrics],
                dimensions=[str(row[f"d{i}"]) for i in range(len(plan.dimensions))],
            )
        )
    return results


async def _rows(
    source: Source, plan: Plan, pool: AsyncConnectionPool | None, ch: ClickHouse | None, t: float
) -> Rows:
    if source == "postgres":
        assert pool is not None
        return await run_postgres(pool, plan, t)
    assert ch is not None
    return await asyncio.to_thread(run_clickhouse, ch, plan, t)


async def run(
    source: Source,
    plan: Plan,
    *,
    pool: AsyncConnectionPool | None = None,
    clickhouse: ClickHouse | None = None,
    timeout: float = 30.0,
) -> QueryResponse:
    """Answer ``plan`` from ``source``; meta says which store answered and how long it took."""
    started = time.perf_counter()
    rows, totals = await _rows(source, plan, pool, clickhouse, timeout)
    total_rows = int(rows[0]["total_rows"]) if rows else 0
    if plan.total_rows and not rows and plan.offset and plan.dimensions:
        # Past the last page: no row carries the count, so ask for the first one.
        first = dataclasses.replace(plan, offset=0, limit=1)
        again, _ = await _rows(source, first, pool, clickhouse, timeout)
        total_rows = int(again[0]["total_rows"]) if again else 0
    meta = QueryMeta(
        source=source,
        query_ms=round((time.perf_counter() - started) * 1000, 3),
        total_rows=total_rows if plan.total_rows else None,
        time_labels=plan.time_labels,
        imports_included=False if plan.imports else None,  # nothing is ever imported
    )
    return QueryResponse(results=rows_to_results(plan, rows, totals), meta=meta, query=plan.echo)
