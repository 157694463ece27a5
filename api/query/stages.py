"""The stages every statement starts from: visits by window functions, and filters as SQL.

``Stages(plan, dialect)`` gives the common table expressions (``chain()``) and the SQL of the
plan's filters (``where()``); ``sql.py`` (the query API) and ``funnel_sql.py`` (funnels) build
their statements on them:

``base``      the site's footprints in the range (bots out unless asked), with their normalised
              values (source, referrer, "(not set)" for empty fields) and times in seconds;
``marked``    a 1 where a footprint follows its visitor's previous one by more than 30 minutes;
``numbered``  the visit number (running sum of the marks) per visitor;
``events``    each footprint with its visit's attributes (first footprint's, last page, counts).
"""

from __future__ import annotations

from typing import Any

from api.query.dialect import DIRECT, NOT_SET, SCHEME, VISIT_GAP, WWW, Dialect
from api.query.filters import PROPS_PREFIX, VISIT_DIMENSIONS, And, Condition, Filter, Not, Or
from api.query.goals import Goal
from api.query.plan import Plan
from footprint.schema import PAGEVIEW

__all__ = ["Stages"]

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


class Stages:
    """The common stages and the filters of one plan, collecting its parameters."""

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


_PREVIOUS = "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW"


def _visit_alias(dim: str) -> str:
    return "v_" + dim.removeprefix("visit:")
