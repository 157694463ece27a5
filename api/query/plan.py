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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.query.dates import DateRange, Interval, bucket_labels, resolve
from api.query.filters import (
    PROPS_PREFIX,
    TIME_DIMENSIONS,
    And,
    Condition,
    Filter,
    FilterParser,
    conditions,
    dimension,
)
from api.query.goals import Goal
from api.query.model import QueryError, QueryRequest

__all__ = ["METRICS", "SESSION_METRICS", "Plan", "plan"]

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


def _error(message: str) -> QueryError:
    return QueryError(message)


def plan(request: QueryRequest, now: datetime, site_goals: Sequence[Goal] = ()) -> Plan:
    """Check a request and resolve it into a Plan; raises QueryError naming the field.

    ``site_goals`` are the site's configured goals: goal filters name them by display name, and
    the ``event:goal`` dimension without a goal filter breaks down by them.
    """
    metrics = tuple(request.metrics)
    for i, m in enumerate(metrics):
        if m not in METRICS:
            raise _error(f"metrics[{i}]: unknown metric {m!r}: one of {', '.join(METRICS)}")
    if len(set(metrics)) != len(metrics):
        raise _error("metrics: each metric at most once")
    dimensions = tuple(
        dimension(d, f"dimensions[{i}]", time_ok=True) for i, d in enumerate(request.dimensions)
    )
    if len(set(dimensions)) != len(dimensions):
        raise _error("dimensions: each dimension at most once")
    times = [d for d in dimensions if d in TIME_DIMENSIONS]
    if len(times) > 1:
        raise _error("dimensions: at most one time dimension")

    parser = FilterParser({g.name: g for g in site_goals})
    top = [parser.parse(raw, f"filters[{i}]") for i, raw in enumerate(request.filters)]
    goal_filters = [f for f in top if isinstance(f, Condition) and f.dimension == "event:goal"]
    goals = tuple(dict.fromkeys(g for f in goal_filters for g in f.goals))
    if "event:goal" in dimensions and not goal_filters:
        goals = tuple(site_goals)  # every configured goal, as Plausible breaks down
        if not goals:
            raise _error(
                "dimensions: event:goal needs goals: configure the site's goals (PUT "
                '/api/v1/sites/goals) or filter ["is", "event:goal", [goals…]] (an event name, '
                'or "Visit /path*")'
            )
    if "conversion_rate" in metrics and not goals:
        raise _error("metrics: conversion_rate needs an event:goal filter or dimension")
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
