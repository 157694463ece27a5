"""Funnels: how many visitors complete a site's goals in order, from either store.

Semantics, as Plausible's funnels, the same in every store and in the reference
(``api.query.reference.funnel_reference``):

* Footprints of the site in the range, bots out unless ``include.bots``, selected by the query
  API's filters; visits are the query API's (one visitor id, no gap over 30 minutes).
* A visit reaches step K when its footprints complete steps 1…K in order: each step by a
  footprint later than the one completing the step before (time, then event id). Steps are not
  carried from one visit to the next. A visitor reaches step K when one of their visits does.
* Per step: ``visitors`` who reached it; ``conversion_rate`` = visitors / the first step's;
  ``conversion_rate_step`` = visitors / the previous step's (the first step's is its own rate);
  ``dropoff`` = the previous step's visitors − these, ``dropoff_percentage`` = dropoff / the
  previous step's (0 for the first step). Percentages have two decimals, rounded half up; a
  rate over no visitors is 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from api.query.clickhouse import dialect_for
from api.query.clickhouse import fetch as fetch_clickhouse
from api.query.engine import Source
from api.query.funnel_sql import build_funnel, step_columns
from api.query.goals import Goal
from api.query.plan import Plan
from api.query.postgres import DIALECT, bounded
from api.query.postgres import fetch as fetch_postgres
from footprint.clickhouse import ClickHouse

__all__ = ["funnel_counts", "percent", "step_report"]


def percent(numerator: int, denominator: int) -> float:
    """numerator / denominator in percent, two decimals, half up (0 over nothing)."""
    if denominator == 0:
        return 0.0
    return (2 * numerator * 10_000 + denominator) // (2 * denominator) / 100


def step_report(visitors: Sequence[int]) -> list[dict[str, Any]]:
    """Per step: visitors, conversion rates (from the first, from the previous) and drop-off."""
    steps = []
    for k, count in enumerate(visitors):
        previous = visitors[k - 1] if k else count
        dropoff = previous - count
        steps.append(
            {
                "visitors": count,
                "conversion_rate": percent(count, visitors[0]),
                "conversion_rate_step": percent(count, previous),
                "dropoff": dropoff,
                "dropoff_percentage": percent(dropoff, previous),
            }
        )
    return steps


def _counts(row: Mapping[str, Any], steps: int) -> dict[str, int]:
    return {name: int(row[name] or 0) for name in step_columns(steps)}


async def funnel_counts(
    source: Source,
    plan: Plan,
    steps: Sequence[Goal],
    *,
    pool: AsyncConnectionPool | None = None,
    clickhouse: ClickHouse | None = None,
    timeout: float = 30.0,
) -> dict[str, int]:
    """all_visitors and step1…stepN (visitors reaching each step) from ``source``."""
    if source == "postgres":
        assert pool is not None
        async with bounded(pool, timeout) as conn:
            (row,) = await fetch_postgres(conn, build_funnel(plan, steps, DIALECT))
        return _counts(row, len(steps))
    assert clickhouse is not None
    ch = clickhouse

    def run() -> dict[str, int]:
        statement = build_funnel(plan, steps, dialect_for(ch, timeout))
        (row,) = fetch_clickhouse(ch, statement, step_columns(len(steps)))
        return _counts(row, len(steps))

    return await asyncio.to_thread(run)
