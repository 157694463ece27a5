"""A funnel's statement: visitors of the range, and those whose visits complete each step.

After the common stages (``stages.py``), ``selected`` keeps the footprints the filters select,
numbered within their visit (``pos``: by time, then event id in byte order, so same-second
footprints have an order too) and flagged per step (``s1``…). Each dialect gives ``levels``: per
visit, how many steps it completes in order (``Dialect.funnel_levels``):

* ``chained_levels`` (PostgreSQL): ``r1`` is each visit's first footprint completing step 1,
  ``rK`` its first footprint completing step K after the one of ``r(K-1)``. Taking the first
  match at each step reaches the furthest step, so ``rK`` holds exactly the visits completing
  steps 1…K in order;
* ClickHouse: the same first-match walk as an ``arrayFold`` over each visit's footprints in
  order, one pass per visit instead of a join per step (ClickHouse evaluates a common table
  expression again at each use: the joins took seconds on a few dozen footprints).

The answer counts distinct visitors of all visits and of those with ``level >= K``.
"""

from __future__ import annotations

from collections.abc import Sequence

from api.query.dialect import Dialect, Statement
from api.query.goals import Goal
from api.query.plan import Plan
from api.query.stages import Stages

__all__ = ["build_funnel", "chained_levels", "step_columns"]


def step_columns(steps: int) -> list[str]:
    """The answer's columns: all_visitors, then step1…stepN (visitors reaching each step)."""
    return ["all_visitors", *(f"step{k}" for k in range(1, steps + 1))]


def chained_levels(steps: int) -> list[str]:
    """``levels`` (vkey, level) in plain SQL: ``rK`` holds the visits reaching step K."""
    reached = [
        "r1 AS (SELECT vkey, vidx, min(pos) AS p FROM selected WHERE s1 = 1 GROUP BY vkey, vidx)"
    ]
    for k in range(2, steps + 1):
        prev = f"r{k - 1}"
        reached.append(
            f"r{k} AS (SELECT e.vkey AS vkey, e.vidx AS vidx, min(e.pos) AS p "
            f"FROM selected AS e INNER JOIN {prev} ON e.vkey = {prev}.vkey "
            f"AND e.vidx = {prev}.vidx WHERE e.s{k} = 1 AND e.pos > {prev}.p "
            "GROUP BY e.vkey, e.vidx)"
        )
    joins = " ".join(
        f"LEFT JOIN r{k} ON r{k}.vkey = v.vkey AND r{k}.vidx = v.vidx" for k in range(1, steps + 1)
    )
    level = " + ".join(f"CASE WHEN r{k}.p IS NULL THEN 0 ELSE 1 END" for k in range(1, steps + 1))
    return [
        *reached,
        "visits AS (SELECT vkey, vidx FROM selected GROUP BY vkey, vidx)",
        f"levels AS (SELECT v.vkey AS vkey, {level} AS level FROM visits AS v {joins})",
    ]


class _Funnel(Stages):
    def statement(self, steps: Sequence[Goal]) -> Statement:
        d = self.d
        flags = [f"{d.if_(self.goal(g), '1', '0')} AS s{k}" for k, g in enumerate(steps, 1)]
        position = f"row_number() OVER (PARTITION BY vkey, vidx ORDER BY ts, eid{d.by_bytes})"
        selected = (
            f"SELECT vkey, vidx, {position} AS pos, {', '.join(flags)} "
            f"FROM events WHERE {self.where(self.plan.filter)}"
        )
        counts = [f"{d.distinct('vkey')} AS all_visitors"] + [
            f"{d.distinct('vkey', f'level >= {k}')} AS step{k}" for k in range(1, len(steps) + 1)
        ]
        sql = (
            f"{self.chain()}, selected AS ({selected}), "
            f"{', '.join(d.funnel_levels(len(steps)))} "
            f"SELECT {', '.join(counts)} FROM levels{d.settings()}"
        )
        return Statement(sql, self.params)


def build_funnel(plan: Plan, steps: Sequence[Goal], dialect: Dialect) -> Statement:
    """The statement counting the visitors of the range and those reaching each step."""
    return _Funnel(plan, dialect).statement(steps)
