"""A checked query: what the stores and the reference implementation run.

``plan(request, now)`` validates a ``QueryRequest`` beyond its JSON shape (known metrics and
dimensions, well-formed filters and patterns, a goal where one is needed, a valid range) and
raises ``QueryError`` naming the field. Semantics, the same in every store:

* Footprints of the site in the range, known bots left out unless ``include.bots``.
* A visit is one visitor's footprints with no gap over 30 minutes (visits are cut at the range's
  edges). A footprint without a visitor id is a visitor and a visit of its own. A visit's
  source, referrer, UTM fields, browser, OS, device and entry page are its first footprint's,
  its exit page its last one's; its duration is last − first; a bounce is a visit of a single
  pageview and nothing else.
* Filters select footprints: ``event:*`` dimensions look at the footprint, ``visit:*`` at its
  visit. ``visitors``, ``visits``, ``pageviews`` and ``events`` count the selected footprints;
  ``views_per_visit``, ``bounce_rate`` and ``visit_duration`` describe the visits they belong to,
  as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.query.dates import DateRange, Interval, bucket_labels, resolve
from api.query.model import QueryError, QueryRequest
from api.query.regex import Pattern, PatternError, compile_pattern, wildcard_pattern
from footprint.schema import MAX_PROP_KEY, PAGEVIEW

__all__ = [
    "EVENT_DIMENSIONS",
    "METRICS",
    "SESSION_METRICS",
    "TIME_DIMENSIONS",
    "VISIT_DIMENSIONS",
    "And",
    "Condition",
    "Filter",
    "Goal",
    "Not",
    "Or",
    "Plan",
    "ascii_lower",
    "plan",
]

METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
    "percentage",
    "conversion_rate",
)
SESSION_METRICS = frozenset({"views_per_visit", "bounce_rate", "visit_duration"})
EVENT_DIMENSIONS = (
    "event:page",
    "event:name",
    "event:goal",
    "event:route",
    "event:status",
    "event:method",
)
PROPS_PREFIX = "event:props:"
VISIT_DIMENSIONS = (
    "visit:source",
    "visit:referrer",
    "visit:utm_medium",
    "visit:utm_source",
    "visit:utm_campaign",
    "visit:utm_content",
    "visit:utm_term",
    "visit:browser",
    "visit:os",
    "visit:device",
    "visit:entry_page",
    "visit:exit_page",
)
TIME_DIMENSIONS = ("time", "time:minute", "time:hour", "time:day", "time:week", "time:month")
OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
MAX_CONDITIONS = 100
MAX_CLAUSES = 100
MAX_CLAUSE = 2000
MAX_DEPTH = 6
GOAL_PAGE = "Visit "  # a goal named "Visit /path" is a pageview goal, as Plausible names them

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(value: str) -> str:
    """ASCII letters lower-cased, the rest as it is: what every store folds alike."""
    return value.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class Goal:
    """An event-name goal, or a pageview goal on pages matching a wildcard path."""

    name: str
    event: str | None = None
    page: Pattern | None = None

    @classmethod
    def parse(cls, name: str) -> Goal:
        if name.startswith(GOAL_PAGE) and name[len(GOAL_PAGE) :].startswith("/"):
            return cls(name, page=wildcard_pattern(name[len(GOAL_PAGE) :]))
        return cls(name, event=name)

    def matches(self, event_name: str, page: str) -> bool:
        """Whether a footprint completes this goal."""
        if self.page is not None:
            return event_name == PAGEVIEW and self.page.search(page)
        return event_name == self.event


@dataclass(frozen=True)
class Condition:
    """A simple filter: ``[operator, dimension, clauses, modifiers?]``."""

    op: str
    dimension: str
    clauses: tuple[str, ...]
    case_sensitive: bool = True
    patterns: tuple[Pattern, ...] = ()
    goals: tuple[Goal, ...] = ()

    @property
    def negated(self) -> bool:
        return self.op.endswith("_not")

    @property
    def base_op(self) -> str:
        return self.op.removesuffix("_not")

    def folded(self) -> tuple[str, ...]:
        """The clauses as compared: ASCII-lower-cased unless case-sensitive."""
        return self.clauses if self.case_sensitive else tuple(map(ascii_lower, self.clauses))


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


Filter = Condition | And | Or | Not


@dataclass(frozen=True)
class Plan:
    """A checked query, ready for a store."""

    site: str
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]
    filter: Filter | None
    # conversion_rate's denominator: the filter without its top-level goal and props conditions.
    totals_filter: Filter | None
    goals: tuple[Goal, ...]
    range: DateRange
    interval: Interval | None  # of the time dimension, if any
    order_by: tuple[tuple[str, Literal["asc", "desc"]], ...]
    limit: int
    offset: int
    include_bots: bool
    total_rows: bool
    time_labels: list[str] | None
    imports: bool
    echo: dict[str, Any] = field(compare=False)

    @property
    def zone(self) -> str:
        return self.range.zone.key

    def dimension_names(self) -> set[str]:
        """Every dimension the query reads: grouped by or filtered on."""
        names = set(self.dimensions)
        for f in (self.filter, self.totals_filter):
            names.update(c.dimension for c in conditions(f))
        return names

    def needs_visits(self) -> bool:
        """Whether the visit attributes are needed beyond the visit id."""
        return bool(SESSION_METRICS & set(self.metrics)) or any(
            d.startswith("visit:") for d in self.dimension_names()
        )


def conditions(f: Filter | None) -> list[Condition]:
    """Every simple condition of a filter tree."""
    if f is None:
        return []
    if isinstance(f, Condition):
        return [f]
    if isinstance(f, Not):
        return conditions(f.item)
    return [c for item in f.items for c in conditions(item)]


def _error(message: str) -> QueryError:
    return QueryError(message)


def _dimension(name: Any, where: str, *, time_ok: bool) -> str:
    if not isinstance(name, str):
        raise _error(f"{where}: a dimension is a string, got {name!r}")
    if name in EVENT_DIMENSIONS or name in VISIT_DIMENSIONS:
        return name
    if name in TIME_DIMENSIONS:
        if not time_ok:
            raise _error(f"{where}: time dimensions cannot be filtered on: set date_range")
        return name
    if name.startswith(PROPS_PREFIX):
        key = name[len(PROPS_PREFIX) :]
        if not 0 < len(key) <= MAX_PROP_KEY or "\x00" in key:
            raise _error(f"{where}: a property name is 1 to {MAX_PROP_KEY} characters")
        return name
    raise _error(f"{where}: unknown dimension {name!r}")


class _Filters:
    def __init__(self) -> None:
        self.count = 0

    def parse(self, raw: Any, where: str, depth: int = 0) -> Filter:
        if depth > MAX_DEPTH:
            raise _error(f"{where}: filters nest at most {MAX_DEPTH} deep")
        if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
            raise _error(f"{where}: a filter is [operator, …], got {raw!r:.200}")
        op = raw[0]
        if op in ("and", "or"):
            if len(raw) != 2 or not isinstance(raw[1], list) or not raw[1]:
                raise _error(f'{where}: ["{op}", [filter, …]] with at least one filter')
            items = tuple(
                self.parse(item, f"{where}[1][{i}]", depth + 1) for i, item in enumerate(raw[1])
            )
            return And(items) if op == "and" else Or(items)
        if op == "not":
            if len(raw) != 2:
                raise _error(f'{where}: ["not", filter]')
            return Not(self.parse(raw[1], f"{where}[1]", depth + 1))
        if op not in OPERATORS:
            raise _error(f"{where}: unknown operator {op!r}: one of {', '.join(OPERATORS)}, "
                         "and, or, not")  # fmt: skip
        self.count += 1
        if self.count > MAX_CONDITIONS:
            raise _error(f"filters: at most {MAX_CONDITIONS} conditions")
        if len(raw) not in (3, 4):
            raise _error(f"{where}: [operator, dimension, [clauses], modifiers?]")
        dimension = _dimension(raw[1], f"{where}[1]", time_ok=False)
        clauses = raw[2]
        if (
            not isinstance(clauses, list)
            or not 0 < len(clauses) <= MAX_CLAUSES
            or not all(isinstance(c, str) and len(c) <= MAX_CLAUSE for c in clauses)
        ):
            raise _error(
                f"{where}[2]: 1 to {MAX_CLAUSES} clauses, strings of at most {MAX_CLAUSE} "
                "characters"
            )
        if any("\x00" in c for c in clauses):
            raise _error(f"{where}[2]: a clause has no NUL character (no stored value has one)")
        case_sensitive = True
        if len(raw) == 4:
            modifiers = raw[3]
            if not isinstance(modifiers, dict) or set(modifiers) - {"case_sensitive"}:
                raise _error(f'{where}[3]: modifiers are {{"case_sensitive": true|false}}')
            case_sensitive = modifiers.get("case_sensitive", True)
            if not isinstance(case_sensitive, bool):
                raise _error(f"{where}[3].case_sensitive: true or false")
            if not case_sensitive and op not in ("is", "is_not", "contains", "contains_not"):
                raise _error(f"{where}[3]: case_sensitive applies to is and contains only")
        patterns: tuple[Pattern, ...] = ()
        if op in ("matches", "matches_not"):
            try:
                patterns = tuple(compile_pattern(c) for c in clauses)
            except PatternError as e:
                raise _error(f"{where}[2]: not a supported regular expression: {e}") from None
        goals: tuple[Goal, ...] = ()
        if dimension == "event:goal":
            if op != "is":
                raise _error(f"{where}: event:goal takes the is operator only")
            if not all(clauses):
                raise _error(f"{where}[2]: a goal name is not empty")
            goals = tuple(Goal.parse(c) for c in dict.fromkeys(clauses))
        return Condition(op, dimension, tuple(clauses), case_sensitive, patterns, goals)


def plan(request: QueryRequest, now: datetime) -> Plan:
    """Check a request and resolve it into a Plan; raises QueryError naming the field."""
    metrics = tuple(request.metrics)
    for i, m in enumerate(metrics):
        if m not in METRICS:
            raise _error(f"metrics[{i}]: unknown metric {m!r}: one of {', '.join(METRICS)}")
    if len(set(metrics)) != len(metrics):
        raise _error("metrics: each metric at most once")
    dimensions = tuple(
        _dimension(d, f"dimensions[{i}]", time_ok=True) for i, d in enumerate(request.dimensions)
    )
    if len(set(dimensions)) != len(dimensions):
        raise _error("dimensions: each dimension at most once")
    times = [d for d in dimensions if d in TIME_DIMENSIONS]
    if len(times) > 1:
        raise _error("dimensions: at most one time dimension")

    parser = _Filters()
    top = [parser.parse(raw, f"filters[{i}]") for i, raw in enumerate(request.filters)]
    goal_filters = [f for f in top if isinstance(f, Condition) and f.dimension == "event:goal"]
    goals = tuple(dict.fromkeys(g for f in goal_filters for g in f.goals))
    if "event:goal" in dimensions and not goal_filters:
        raise _error(
            'dimensions: event:goal needs a top-level ["is", "event:goal", [goals…]] filter '
            '(goals are given inline: an event name, or "Visit /path*")'
        )
    if "conversion_rate" in metrics and not goal_filters:
        raise _error("metrics: conversion_rate needs an event:goal filter")
    if "percentage" in metrics and not dimensions:
        raise _error("metrics: percentage needs at least one dimension")
    mixed = SESSION_METRICS & set(metrics)
    event_dims = [d for d in dimensions if d.startswith("event:")]
    if mixed and event_dims:
        raise _error(
            f"metrics: {', '.join(sorted(mixed))} cannot be broken down by event dimensions "
            f"({', '.join(event_dims)})"
        )

    try:
        zone = ZoneInfo(request.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _error(f"timezone: unknown time zone {request.timezone!r}") from None
    try:
        date_range = resolve(request.date_range, zone, now)
    except ValueError as e:
        raise _error(f"date_range: {e}") from None
    interval: Interval | None = None
    if times:
        interval = date_range.auto_interval() if times[0] == "time" else times[0][5:]  # type: ignore[assignment]

    order_by = tuple(request.order_by or ())
    for i, (name, _) in enumerate(order_by):
        if name not in metrics and name not in dimensions:
            raise _error(f"order_by[{i}]: {name!r} is not a queried metric or dimension")
    if not order_by:
        default: list[tuple[str, Literal["asc", "desc"]]] = [(t, "asc") for t in times]
        order_by = (*default, (metrics[0], "desc"))

    labels = None
    if request.include.time_labels:
        if interval is None:
            raise _error("include.time_labels: needs a time dimension")
        try:
            labels = bucket_labels(interval, date_range)
        except ValueError as e:
            raise _error(f"include.time_labels: {e}") from None

    filter_ = None if not top else top[0] if len(top) == 1 else And(tuple(top))
    kept = [
        f
        for f in top
        if not (
            isinstance(f, Condition)
            and (f.dimension == "event:goal" or f.dimension.startswith(PROPS_PREFIX))
        )
    ]
    totals_filter = None if not kept else kept[0] if len(kept) == 1 else And(tuple(kept))
    include = {k: v for k, v in request.include.model_dump().items() if v}
    echo = {
        "site_id": request.site_id.lower(),
        "metrics": list(metrics),
        "date_range": date_range.echo(),
        "filters": request.filters,
        "dimensions": list(dimensions),
        "order_by": [list(o) for o in order_by],
        "include": include,
        "pagination": request.pagination.model_dump(),
        "timezone": zone.key,
    }
    return Plan(
        site=request.site_id.strip().lower(),
        metrics=metrics,
        dimensions=dimensions,
        filter=filter_,
        totals_filter=totals_filter,
        goals=goals,
        range=date_range,
        interval=interval,
        order_by=order_by,
        limit=request.pagination.limit,
        offset=request.pagination.offset,
        include_bots=request.include.bots,
        total_rows=request.include.total_rows,
        time_labels=labels,
        imports=request.include.imports,
        echo=echo,
    )
