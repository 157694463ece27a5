"""A stored funnel over a date range: the report ``POST /api/v2/funnel`` answers.

The funnel and the site's goals come from PostgreSQL (``api/goals.py``); the counts from the
store asked (``api/query/funnel.py``, where the semantics are). Raises ``UnknownFunnel`` and
``QueryError`` (a bad range, filter or zone) for the route to answer.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from psycopg_pool import AsyncConnectionPool

from api.goals import GoalStore
from api.models.funnels import FunnelQuery, FunnelReport
from api.query import QueryRequest, Source, plan
from api.query.funnel import funnel_counts, percent, step_report
from footprint.clickhouse import ClickHouse

__all__ = ["funnel_report"]


async def funnel_report(
    body: FunnelQuery,
    source: Source,
    *,
    pool: AsyncConnectionPool,
    clickhouse: ClickHouse | None,
    timeout: float,
) -> FunnelReport:
    """The funnel's steps over the range, counted by ``source``."""
    started = time.perf_counter()
    site = body.site_id.strip().lower()
    goals = GoalStore(pool)
    funnel = await goals.funnel(site, body.funnel_id)
    configured = [g.as_goal() for g in await goals.goals(site)]
    # The query API checks the range, filters and zone: one set of rules and error messages.
    request = QueryRequest(
        site_id=body.site_id,
        metrics=["visitors"],
        date_range=body.date_range,
        filters=body.filters,
        timezone=body.timezone,
        include={"bots": body.include.bots},  # type: ignore[arg-type]
    )
    checked = plan(request, datetime.now(UTC), configured)
    steps = [g.as_goal() for g in funnel.steps]
    counts = await funnel_counts(
        source, checked, steps, pool=pool, clickhouse=clickhouse, timeout=timeout
    )
    visitors = [counts[f"step{k}"] for k in range(1, len(steps) + 1)]
    entering, everyone = visitors[0], counts["all_visitors"]
    return FunnelReport.model_validate(
        {
            "funnel_id": funnel.id,
            "name": funnel.name,
            "steps": [
                {"label": g.display_name, "goal_id": g.id, **row}
                for g, row in zip(funnel.steps, step_report(visitors), strict=True)
            ],
            "all_visitors": everyone,
            "entering_visitors": entering,
            "entering_visitors_percentage": percent(entering, everyone),
            "never_entering_visitors": everyone - entering,
            "never_entering_visitors_percentage": percent(everyone - entering, everyone),
            "meta": {
                "source": source,
                "query_ms": round((time.perf_counter() - started) * 1000, 3),
            },
            "query": {
                k: v
                for k, v in checked.echo.items()
                if k in ("site_id", "date_range", "filters", "timezone")
            }
            | {"funnel_id": body.funnel_id, "include": {"bots": body.include.bots}},
        }
    )
