"""The query API on PostgreSQL: the shared SQL in PostgreSQL's spelling, under a time limit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from psycopg_pool import AsyncConnectionPool

from api.query.dialect import NO_PROP, Dialect, Statement
from api.query.funnel_sql import chained_levels
from api.query.plan import Plan
from api.query.sql import build, build_totals

__all__ = ["DIALECT", "PostgresDialect", "bounded", "fetch", "run_postgres"]

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class PostgresDialect(Dialect):
    # Dimension values are ordered by their bytes, as ClickHouse orders strings.
    by_bytes = ' COLLATE "C"'

    def seconds(self) -> str:
        # ClickHouse keeps seconds: visits and durations are computed on whole seconds here too.
        return "extract(epoch FROM date_trunc('second', footprint_time))::bigint"

    def status(self) -> str:
        return "status_code::text"

    def event_id(self) -> str:
        return "event_id::text"

    def time_range(self) -> str:
        return "footprint_time >= %(start)s AND footprint_time < %(end)s"

    def not_bot(self) -> str:
        return "NOT is_bot"

    def props_columns(self) -> str:
        return "props"

    def prop(self, key: str) -> str:
        return f"coalesce(props ->> {key}, '{NO_PROP}')"

    def is_pageview(self) -> str:
        return "CASE WHEN name = 'pageview' THEN 1 ELSE 0 END"

    def previous(self, column: str, window: str) -> str:
        return f"lag({column}) OVER {window}"

    def bucket(self, interval: str) -> str:
        local = "(ft AT TIME ZONE %(tz)s)"
        if interval in ("minute", "hour"):
            return f"to_char(date_trunc('{interval}', {local}), 'YYYY-MM-DD HH24:MI:SS')"
        if interval == "day":
            return f"to_char({local}::date, 'YYYY-MM-DD')"
        if interval == "week":
            # A week starting before the range is labelled with the range's first day.
            return (
                f"to_char(greatest(date_trunc('week', {local})::date, %(first_day)s::date), "
                "'YYYY-MM-DD')"
            )
        return f"to_char(date_trunc('month', {local}), 'YYYY-MM-DD')"

    def replace_first(self, value: str, pattern: str) -> str:
        return f"regexp_replace({value}, {_literal(pattern)}, '')"

    def in_list(self, value: str, values: str) -> str:
        return f"{value} = ANY({values}::text[])"

    def contains(self, value: str, needle: str) -> str:
        return f"strpos({value}, {needle}::text) > 0"

    def matches(self, value: str, pattern: str) -> str:
        return f"{value} ~ {pattern}::text"

    def ascii_lower(self, value: str) -> str:
        return f"translate({value}, '{_UPPER}', '{_UPPER.lower()}')"

    def distinct(self, value: str, cond: str | None = None) -> str:
        if cond is None:
            return f"count(DISTINCT {value})"
        return f"count(DISTINCT CASE WHEN {cond} THEN {value} END)"

    def goal_list(self, items: list[tuple[str, str]]) -> str:
        cases = ", ".join(f"CASE WHEN {cond} THEN {name}::text END" for cond, name in items)
        return f"ARRAY[{cases}]::text[]"

    def goal_rows(self, goals: str) -> tuple[str, str]:
        return f"events CROSS JOIN LATERAL unnest({goals}) AS g(goal)", "goal IS NOT NULL"

    def funnel_levels(self, steps: int) -> list[str]:
        return chained_levels(steps)

    def int_div(self, a: str, b: str) -> str:
        # sum() of bigint is numeric: div() keeps the quotient whole, as ClickHouse's intDiv.
        return f"div(({a})::numeric, ({b})::numeric)"


DIALECT = PostgresDialect()


@contextlib.asynccontextmanager
async def bounded(pool: AsyncConnectionPool, timeout: float) -> AsyncIterator[Any]:
    """A connection in a transaction whose statements the server cancels past ``timeout``."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout * 1000)}ms",)
        )
        yield conn


async def fetch(conn: Any, statement: Statement) -> list[dict[str, Any]]:
    """The rows of a statement, as dicts by column name."""
    cur = await conn.execute(statement.sql, statement.params)
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


async def run_postgres(
    pool: AsyncConnectionPool, plan: Plan, timeout: float
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The grouped rows (dimension values d0…, aggregates, total_rows) and the totals."""
    async with bounded(pool, timeout) as conn:
        totals: dict[str, int] = {}
        statement = build_totals(plan, DIALECT)
        if statement is not None:
            (row,) = await fetch(conn, statement)
            totals = {k: int(v) for k, v in row.items()}
        rows = await fetch(conn, build(plan, DIALECT, totals))
    return rows, totals
