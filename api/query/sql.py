"""One SQL shape for both stores: visits by window functions, then filters, groups, order.

The statement is built once from a ``Plan``; a ``Dialect`` (``postgres.py``, ``clickhouse.py``)
supplies the few expressions that are spelt differently. Both stores get ``%(name)s`` parameters
for every value taken from the request. Stages:

``base``      the site's footprints in the range (bots out unless asked), with their normalised
              values (source, referrer, "(not set)" for empty fields) and times in seconds;
``marked``    a 1 where a footprint follows its visitor's previous one by more than 30 minutes;
``numbered``  the visit number (running sum of the marks) per visitor;
``events``    each footprint with its visit's attributes (first footprint's, last page, counts);
``selected``  the footprints the filters keep, with the dimension values (one row per goal met
              with the ``event:goal`` dimension);
``per_visit`` → ``grouped`` counts per group, visits counted once;
the last ``SELECT`` orders (ties by dimensions, byte order), counts the rows and paginates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.query.metrics import AGGREGATES, RATIOS
from api.query.plan import (
    PROPS_PREFIX,
    VISIT_DIMENSIONS,
    And,
    Condition,
    Filter,
    Goal,
    Not,
    Or,
    Plan,
)
from footprint.schema import PAGEVIEW

__all__ = ["VISIT_GAP", "Dialect", "Statement", "build", "build_totals"]

VISIT_GAP = 30 * 60  # seconds of inactivity that end a visit
NOT_SET = "(not set)"
DIRECT = "Direct / None"
NO_PROP = "(none)"
WWW = r"^www\."
SCHEME = r"^([a-z][a-z0-9+.-]*:)?//(www\.)?"
# Visit attributes: taken from the visit's first footprint (the exit page from its last).
VISIT_COLUMNS = {
    "visit:source": "e_source",
    "visit:referrer": "e_referrer",
    "visit:utm_medium": "e_utm_medium",
    "visit:utm_source": "e_utm_source",
    "visit:utm_campaign": "e_utm_campaign",
    "visit:utm_content": "e_utm_content",
    "visit:utm_term": "e_utm_term",
    "visit:browser": "e_browser",
    "visit:os": "e_os",
    "visit:device": "e_device",
    "visit:entry_page": "link",
    "visit:exit_page": "link",
}
assert set(VISIT_COLUMNS) == set(VISIT_DIMENSIONS)


class Dialect:
    """The expressions each store spells its own way."""

    table = "user_footprint"
    by_bytes = ""  # appended to a string sort key to order by bytes

    def seconds(self) -> str:
        raise NotImplementedError

    def status(self) -> str:
        raise NotImplementedError

    def event_id(self) -> str:
        raise NotImplementedError

    def time_range(self) -> str:
        raise NotImplementedError

    def not_bot(self) -> str:
        raise NotImplementedError

    def props_columns(self) -> str:
        raise NotImplementedError

    def prop(self, key: str) -> str:
        raise NotImplementedError

    def is_pageview(self) -> str:
        raise NotImplementedError

    def previous(self, column: str, window: str) -> str:
        raise NotImplementedError

    def bucket(self, interval: str) -> str:
        raise NotImplementedError

    def replace_first(self, value: str, pattern: str) -> str:
        raise NotImplementedError

    def if_(self, cond: str, then: str, other: str) -> str:
        return f"CASE WHEN {cond} THEN {then} ELSE {other} END"

    def in_list(self, value: str, values: str) -> str:
        raise NotImplementedError

    def contains(self, value: str, needle: str) -> str:
        raise NotImplementedError

    def matches(self, value: str, pattern: str) -> str:
        raise NotImplementedError

    def ascii_lower(self, value: str) -> str:
        raise NotImplementedError

    def distinct(self, value: str, cond: str | None = None) -> str:
        raise NotImplementedError

    def goal_rows(self, goals: str) -> tuple[str, str]:
        """(the FROM clause, a WHERE condition) giving one row per goal a footprint meets."""
        raise NotImplementedError

    def goal_list(self, items: list[tuple[str, str]]) -> str:
        raise NotImplementedError

    def int_div(self, a: str, b: str) -> str:
        raise NotImplementedError

    def settings(self) -> str:
        return ""


@dataclass
class Statement:
    """SQL text and its parameters."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


class _Builder:
    def __init__(self, plan: Plan, d: Dialect) -> None:
        self.plan, self.d = plan, d
        self.params: dict[str, Any] = {
            "site": plan.site,
            "start": plan.range.start,
            "end": plan.range.end,
            "tz": plan.zone,
            "first_day": plan.range.first_day,
        }

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    # --- stages -----------------------------------------------------------------------------

    def base(self) -> str:
        d = self.d
        ns = {c: d.if_(f"{c} = ''", f"'{NOT_SET}'", c) for c in (
            "route", "utm_medium", "utm_source", "utm_campaign", "utm_content", "utm_term",
            "browser", "os", "device")}  # fmt: skip
        source = d.if_(
            "utm_source <> ''",
            "utm_source",
            d.if_("referrer_host <> ''", d.replace_first("referrer_host", WWW), f"'{DIRECT}'"),
        )
        referrer = d.if_("referrer = ''", f"'{DIRECT}'", d.replace_first("referrer", SCHEME))
        bots = "" if self.plan.include_bots else f" AND {d.not_bot()}"
        columns = [
            f"{d.seconds()} AS ts",
            f"{d.event_id()} AS eid",
            d.if_("visitor_id = ''", d.event_id(), "visitor_id") + " AS vkey",
            "footprint_time AS ft",
            "link",
            "name",
            "method",
            f"{d.is_pageview()} AS is_pv",
            f"{ns['route']} AS e_route",
            f"{d.status()} AS e_status",
            f"{source} AS e_source",
            f"{referrer} AS e_referrer",
            *(f"{ns[c]} AS e_{c}" for c in ns if c != "route"),
            d.props_columns(),
        ]
        return (
            f"SELECT {', '.join(columns)} FROM {d.table} "
            f"WHERE site = %(site)s AND {d.time_range()}{bots}"
        )

    def visit_window(self, frame: str) -> str:
        return f"(PARTITION BY vkey, vidx ORDER BY ts, eid{self.d.by_bytes} {frame})"

    def events(self) -> str:
        whole = self.visit_window("ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING")
        names = self.plan.dimension_names()
        columns = ["*"]
        for dim in sorted(n for n in names if n.startswith("visit:")):
            fn = "last_value" if dim == "visit:exit_page" else "first_value"
            columns.append(f"{fn}({VISIT_COLUMNS[dim]}) OVER {whole} AS {_visit_alias(dim)}")
        if self.needs_session_metrics():
            columns += [
                f"count(*) OVER {whole} AS v_events",
                f"sum(is_pv) OVER {whole} AS v_pageviews",
                f"max(ts) OVER {whole} - min(ts) OVER {whole} AS v_duration",
            ]
        return f"SELECT {', '.join(columns)} FROM numbered"

    def needs_session_metrics(self) -> bool:
        return any(m in self.plan.metrics for m in ("views_per_visit", "bounce_rate",
                                                     "visit_duration"))  # fmt: skip

    def chain(self) -> str:
        d = self.d
        order = f"ORDER BY ts, eid{d.by_bytes}"
        mark = d.if_(
            f"ts - {d.previous('ts', f'(PARTITION BY vkey {order} ' + _PREVIOUS + ')')} "
            f"> {VISIT_GAP}",
            "1",
            "0",
        )
        running = f"(PARTITION BY vkey {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        return (
            f"WITH base AS ({self.base()}), "
            f"marked AS (SELECT *, {mark} AS new_visit FROM base), "
            f"numbered AS (SELECT *, sum(new_visit) OVER {running} AS vidx FROM marked), "
            f"events AS ({self.events()})"
        )

    # --- values and filters -----------------------------------------------------------------

    def value(self, dim: str) -> str:
        d = self.d
        if dim.startswith("visit:"):
            return _visit_alias(dim)
        if dim.startswith(PROPS_PREFIX):
            return d.prop(self.param(dim[len(PROPS_PREFIX) :]))
        if dim.startswith("time"):
            assert self.plan.interval is not None
            return d.bucket(self.plan.interval)
        return {
            "event:page": "link",
            "event:name": "name",
            "event:route": "e_route",
            "event:status": "e_status",
            "event:method": "method",
            "event:goal": "goal",
        }[dim]

    def goal(self, goal: Goal) -> str:
        d = self.d
        if goal.page is not None:
            return f"(name = '{PAGEVIEW}' AND {d.matches('link', self.param(goal.page.sql))})"
        return f"(name = {self.param(goal.event)})"

    def condition(self, c: Condition) -> str:
        d = self.d
        if c.dimension == "event:goal":
            return "(" + " OR ".join(self.goal(g) for g in c.goals) + ")"
        value = self.value(c.dimension)
        if not c.case_sensitive:
            value = d.ascii_lower(value)
        clauses = c.folded()
        if c.base_op == "is":
            sql = d.in_list(value, self.param(list(clauses)))
        elif c.base_op == "contains":
            sql = " OR ".join(d.contains(value, self.param(v)) for v in clauses)
        else:
            sql = " OR ".join(d.matches(value, self.param(p.sql)) for p in c.patterns)
        return f"(NOT ({sql}))" if c.negated else f"({sql})"

    def where(self, f: Filter | None) -> str:
        if f is None:
            return "1 = 1"
        if isinstance(f, Condition):
            return self.condition(f)
        if isinstance(f, Not):
            return f"(NOT {self.where(f.item)})"
        joiner = " AND " if isinstance(f, And) else " OR "
        assert isinstance(f, And | Or)
        return "(" + joiner.join(self.where(i) for i in f.items) + ")"

    # --- the statement ----------------------------------------------------------------------

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


_PREVIOUS = "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW"


def _visit_alias(dim: str) -> str:
    return "v_" + dim.removeprefix("visit:")


def build(plan: Plan, dialect: Dialect, totals: dict[str, int]) -> Statement:
    """The statement answering ``plan`` (``totals``: total and conversion visitors, if asked)."""
    return _Builder(plan, dialect).query(totals)


def build_totals(plan: Plan, dialect: Dialect) -> Statement | None:
    """The statement counting percentage's and conversion rate's denominators, if needed."""
    if not {"percentage", "conversion_rate"} & set(plan.metrics):
        return None
    return _Builder(plan, dialect).totals()
