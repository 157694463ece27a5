"""The query API on ClickHouse (chdb or a server ≥ 21.8: window functions), under a time limit."""

from __future__ import annotations

from typing import Any

from api.query.dialect import NO_PROP, Dialect, Statement
from api.query.metrics import AGGREGATES
from api.query.plan import Plan
from api.query.sql import build, build_totals
from footprint.clickhouse import ClickHouse

__all__ = [
    "MIN_VERSION",
    "ClickHouseDialect",
    "UnsupportedServer",
    "dialect_for",
    "fetch",
    "run_clickhouse",
]

MIN_VERSION = (21, 8)


class UnsupportedServer(RuntimeError):
    """A ClickHouse server too old for the query API (no window functions)."""


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ClickHouseDialect(Dialect):
    table = "user_footprint FINAL"  # one row per event id, merged or not

    def __init__(self, timeout: float, version: tuple[int, ...]) -> None:
        self.timeout, self.version = timeout, version

    def seconds(self) -> str:
        return "toInt64(toUnixTimestamp(footprint_time))"

    def status(self) -> str:
        return "toString(status_code)"

    def event_id(self) -> str:
        return "toString(event_id)"

    def time_range(self) -> str:
        return (
            "footprint_time >= toDateTime(%(start)s, 'UTC') "
            "AND footprint_time < toDateTime(%(end)s, 'UTC')"
        )

    def not_bot(self) -> str:
        return "is_bot = 0"

    def props_columns(self) -> str:
        return "`props.key` AS pkeys, `props.value` AS pvals"

    def prop(self, key: str) -> str:
        return f"if(has(pkeys, {key}), pvals[indexOf(pkeys, {key})], '{NO_PROP}')"

    def is_pageview(self) -> str:
        return "toUInt8(name = 'pageview')"

    def previous(self, column: str, window: str) -> str:
        return f"lagInFrame({column}) OVER {window}"

    def bucket(self, interval: str) -> str:
        if interval in ("minute", "hour"):
            start = "toStartOfMinute" if interval == "minute" else "toStartOfHour"
            # %% : the text goes through %-style parameter substitution.
            return f"formatDateTime({start}(ft, %(tz)s), '%%Y-%%m-%%d %%H:%%i:%%S', %(tz)s)"
        day = "toDate(ft, %(tz)s)"
        if interval == "day":
            return f"toString({day})"
        if interval == "week":
            return f"toString(greatest(toMonday({day}), toDate(%(first_day)s)))"
        return f"toString(toStartOfMonth({day}))"

    def replace_first(self, value: str, pattern: str) -> str:
        return f"replaceRegexpOne({value}, {_literal(pattern)}, '')"

    def in_list(self, value: str, values: str) -> str:
        return f"has({values}, {value})"

    def contains(self, value: str, needle: str) -> str:
        return f"position({value}, {needle}) > 0"

    def matches(self, value: str, pattern: str) -> str:
        return f"match({value}, {pattern})"

    def ascii_lower(self, value: str) -> str:
        return f"lower({value})"  # ASCII letters only, as PostgreSQL's translate()

    def distinct(self, value: str, cond: str | None = None) -> str:
        return f"uniqExact({value})" if cond is None else f"uniqExactIf({value}, {cond})"

    def goal_list(self, items: list[tuple[str, str]]) -> str:
        ifs = ", ".join(f"if({cond}, {name}, '')" for cond, name in items)
        return f"arrayFilter(x -> x != '', [{ifs}])"

    def goal_rows(self, goals: str) -> tuple[str, str]:
        return f"events ARRAY JOIN {goals} AS goal", "1 = 1"

    def funnel_levels(self, steps: int) -> list[str]:
        # One pass per visit: its footprints' steps as bit masks in order, folded into the
        # number of steps completed one after the other (the first match of each step, as
        # chained_levels). Not windowFunnel: it lets a footprint completing steps K and K+1
        # at once break the chain, where the first-match definition counts it.
        mask = " + ".join(f"{1 << (k - 1)} * s{k}" for k in range(1, steps + 1))
        return [
            "levels AS (SELECT vkey, arrayFold((acc, t) -> if(bitTest(t.2, acc), acc + 1, acc), "
            "arraySort(groupArray((pos, mask))), toUInt64(0)) AS level "
            f"FROM (SELECT vkey, vidx, pos, toUInt64({mask}) AS mask FROM selected) "
            "GROUP BY vkey, vidx)"
        ]

    def int_div(self, a: str, b: str) -> str:
        return f"intDiv({a}, {b})"

    def settings(self) -> str:
        settings = [f"max_execution_time = {max(1, round(self.timeout))}"]
        if self.version < (22,):
            settings.append("allow_experimental_window_functions = 1")
        return " SETTINGS " + ", ".join(settings)


def fetch(ch: ClickHouse, statement: Statement, names: list[str]) -> list[dict[str, Any]]:
    rows = ch.execute(statement.sql, statement.params)
    return [dict(zip(names, row, strict=True)) for row in rows]


def dialect_for(ch: ClickHouse, timeout: float) -> ClickHouseDialect:
    """The server's dialect; UnsupportedServer for one without window functions."""
    version = ch.server_version
    if version[:2] < MIN_VERSION:
        raise UnsupportedServer(
            f"ClickHouse {'.'.join(map(str, version[:2]))} has no window functions: the query "
            f"API needs ClickHouse ≥ {'.'.join(map(str, MIN_VERSION))} or chdb "
            "(or ask ?source=postgres)"
        )
    return ClickHouseDialect(timeout, version)


def run_clickhouse(
    ch: ClickHouse, plan: Plan, timeout: float
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The grouped rows and the totals, as ``run_postgres`` (synchronous: call in a thread)."""
    dialect = dialect_for(ch, timeout)
    totals: dict[str, int] = {}
    statement = build_totals(plan, dialect)
    if statement is not None:
        (row,) = fetch(ch, statement, ["total_visitors", "conversion_visitors"])
        totals = {k: int(v) for k, v in row.items()}
    names = [*(f"d{i}" for i in range(len(plan.dimensions))), *AGGREGATES, "total_rows"]
    return fetch(ch, build(plan, dialect, totals), names), totals
