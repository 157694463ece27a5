"""The query API's statement, one SQL shape for both stores: groups, metrics, order, pages.

The statement is built once from a ``Plan``; a ``Dialect`` (``postgres.py``, ``clickhouse.py``)
supplies the few expressions that are spelt differently. Both stores get ``%(name)s`` parameters
for every value taken from the request. After the common stages (``stages.py``: ``base`` →
``marked`` → ``numbered`` → ``events``):

``selected``  the footprints the filters keep, with the dimension values (one row per goal met
              with the ``event:goal`` dimension);
``per_visit`` → ``grouped`` counts per group, visits counted once;
the last ``SELECT`` orders (ties by dimensions, byte order), counts the rows and paginates.
"""

from __future__ import annotations

from api.query.dialect import Dialect, Statement
from api.query.metrics import AGGREGATES, RATIOS
from api.query.plan import Plan
from api.query.stages import Stages

__all__ = ["build", "build_totals"]


class _Query(Stages):
    def query(self, totals: dict[str, int]) -> Statement:
        d, plan = self.d, self.plan
        dims = [f"d{i}" for i in range(len(plan.dimensions))]
        source, met = "events", "1 = 1"
        if "event:goal" in plan.dimensions:
            items = [(self.goal(g), self.param(g.name)) for g in plan.goals]
            source, met = d.goal_rows(d.goal_list(items))
        values = [
            f"{self.value(dim)} AS {name}" for dim, name in zip(plan.dimensions, dims, strict=True)
        ]
        session = self.needs_session_metrics()
        extra = ["v_pageviews", d.if_("v_events = 1 AND v_pageviews = 1", "1", "0") + " AS bounce",
                 "v_duration"] if session else []  # fmt: skip
        selected = (
            f"SELECT {', '.join([*values, 'vkey', 'vidx', 'is_pv', *extra])} "
            f"FROM {source} WHERE {met} AND {self.where(plan.filter)}"
        )
        keys = ", ".join([*dims, "vkey", "vidx"])
        per_visit_cols = [*dims, "vkey", "count(*) AS n_events", "sum(is_pv) AS n_pageviews"]
        if session:
            per_visit_cols += [
                "max(v_pageviews) AS vp",
                "max(bounce) AS b",
                "max(v_duration) AS dur",
            ]
        per_visit = f"SELECT {', '.join(per_visit_cols)} FROM selected GROUP BY {keys}"
        sums = {
            "visitors": d.distinct("vkey"),
            "visits": "count(*)",
            "pageviews": "sum(n_pageviews)",
            "events": "sum(n_events)",
            "visit_pageviews": "sum(vp)" if session else "0",
            "bounces": "sum(b)" if session else "0",
            "duration": "sum(dur)" if session else "0",
        }
        aggregates = [f"coalesce({sums[a]}, 0) AS {a}" for a in AGGREGATES]
        group_by = f" GROUP BY {', '.join(dims)}" if dims else ""
        grouped = f"SELECT {', '.join([*dims, *aggregates])} FROM per_visit{group_by}"
        order = [self.order_key(name, direction, totals) for name, direction in plan.order_by]
        order += [f"{dim}{d.by_bytes} ASC" for dim in dims]
        tail = ""
        if dims:
            tail = f" ORDER BY {', '.join(order)} LIMIT {plan.limit} OFFSET {plan.offset}"
        sql = (
            f"{self.chain()}, selected AS ({selected}), per_visit AS ({per_visit}), "
            f"grouped AS ({grouped}) "
            f"SELECT {', '.join([*dims, *AGGREGATES])}, count(*) OVER () AS total_rows "
            f"FROM grouped{tail}{d.settings()}"
        )
        return Statement(sql, self.params)

    def order_key(self, name: str, direction: str, totals: dict[str, int]) -> str:
        d, plan = self.d, self.plan
        if name in plan.dimensions:
            key = f"d{plan.dimensions.index(name)}{d.by_bytes}"
        elif name in RATIOS:
            numerator, denominator, multiplier = RATIOS[name]
            den = str(totals[denominator]) if denominator in totals else denominator
            key = d.if_(
                f"{den} = 0",
                "0",
                d.int_div(f"2 * {numerator} * {multiplier} + {den}", f"2 * {den}"),
            )
        else:
            key = name
        return f"{key} {direction.upper()}"

    def totals(self) -> Statement:
        d = self.d
        columns = [
            f"{d.distinct('vkey', self.where(self.plan.filter))} AS total_visitors",
            f"{d.distinct('vkey', self.where(self.plan.totals_filter))} AS conversion_visitors",
        ]
        return Statement(
            f"{self.chain()} SELECT {', '.join(columns)} FROM events{d.settings()}", self.params
        )


def build(plan: Plan, dialect: Dialect, totals: dict[str, int]) -> Statement:
    """The statement answering ``plan`` (``totals``: total and conversion visitors, if asked)."""
    return _Query(plan, dialect).query(totals)


def build_totals(plan: Plan, dialect: Dialect) -> Statement | None:
    """The statement counting percentage's and conversion rate's denominators, if needed."""
    if not {"percentage", "conversion_rate"} & set(plan.metrics):
        return None
    return _Query(plan, dialect).totals()
