"""A query API in the shape of Plausible's Stats API v2, answered by PostgreSQL or ClickHouse.

``plan(QueryRequest, now)`` checks a request; ``run(source, plan, …)`` answers it from one
store; ``reference(plan, footprints)`` is the plain-Python definition both stores are tested
against. See ``plan.py`` for the semantics and ``sql.py`` for the statement.
"""

from __future__ import annotations

from api.query.clickhouse import UnsupportedServer
from api.query.engine import Source, rows_to_results, run
from api.query.model import QueryError, QueryRequest, QueryResponse
from api.query.plan import Plan, plan

__all__ = [
    "Plan",
    "QueryError",
    "QueryRequest",
    "QueryResponse",
    "Source",
    "UnsupportedServer",
    "plan",
    "rows_to_results",
    "run",
]
