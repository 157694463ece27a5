"""The query API in plain Python: the definition the stores are tested against.

It reads footprints as the sinks store them and computes, step by step, what ``sql.py`` asks of
the stores (see ``plan.py`` for the semantics). It is written for clarity, not speed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from api.query.dialect import DIRECT, NO_PROP, NOT_SET, SCHEME, VISIT_GAP, WWW
from api.query.filters import PROPS_PREFIX, And, Condition, Filter, Not, Or, ascii_lower
from api.query.goals import Goal
from api.query.metrics import AGGREGATES, RATIOS, scaled
from api.query.plan import Plan
from footprint.schema import PAGEVIEW, Footprint

__all__ = ["funnel_reference", "reference"]

Event = dict[str, Any]


def _not_set(value: str) -> str:
    return value or NOT_SET


def _event(fp: Footprint) -> Event:
    assert fp.footprint_time is not None and fp.event_id is not None
    ts = int(fp.footprint_time.timestamp() // 1)  # whole seconds, as ClickHouse keeps them
    eid = str(fp.event_id)
    if fp.utm_source:
        source = fp.utm_source
    elif fp.referrer_host:
        source = re.sub(WWW, "", fp.referrer_host, count=1)
    else:
        source = DIRECT
    referrer = re.sub(SCHEME, "", fp.referrer, count=1) if fp.referrer else DIRECT
    return {
        "ts": ts,
        "eid": eid,
        "vkey": fp.visitor_id or eid,
        "time": datetime.fromtimestamp(ts, UTC),
        "event:page": fp.link,
        "event:name": fp.name,
        "event:route": _not_set(fp.route),
        "event:status": str(fp.status_code),
        "event:method": fp.method,
        "props": fp.props,
        "is_pv": int(fp.name == PAGEVIEW),
        "visit:source": source,
        "visit:referrer": referrer,
        **{
            f"visit:{c}": _not_set(getattr(fp, c))
            for c in (
                "utm_medium",
                "utm_source",
                "utm_campaign",
                "utm_content",
                "utm_term",
                "browser",
                "os",
                "device",
            )
        },  # fmt: skip
    }


def _visits(events: list[Event]) -> None:
    """Give each event its visit (``visit``) and the visit's attributes, in place."""
    by_visitor: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_visitor[e["vkey"]].append(e)
    for vkey, mine in by_visitor.items():
        mine.sort(key=lambda e: (e["ts"], e["eid"]))
        visits: list[list[Event]] = []
        for e in mine:
            if not visits or e["ts"] - visits[-1][-1]["ts"] > VISIT_GAP:
                visits.append([])
            visits[-1].append(e)
        for i, visit in enumerate(visits):
            first, last = visit[0], visit[-1]
            pageviews = sum(e["is_pv"] for e in visit)
            attributes = {
                "visit": (vkey, i),
                "visit:entry_page": first["event:page"],
                "visit:exit_page": last["event:page"],
                "v_pageviews": pageviews,
                "v_bounce": int(len(visit) == 1 and pageviews == 1),
                "v_duration": last["ts"] - first["ts"],
            }
            for e in visit:
                e.update(attributes)
                # A visit's source, referrer, UTM fields and agent are its first footprint's.
                for key in first:
                    if key.startswith("visit:") and key not in attributes:
                        e[key] = first[key]


def _bucket(plan: Plan, t: datetime) -> str:
    local = t.astimezone(plan.range.zone)
    interval = plan.interval
    if interval == "minute":
        return local.strftime("%Y-%m-%d %H:%M:00")
    if interval == "hour":
        return local.strftime("%Y-%m-%d %H:00:00")
    day = local.date()
    if interval == "day":
        return day.isoformat()
    if interval == "week":
        return max(day - timedelta(days=day.weekday()), plan.range.first_day).isoformat()
    return day.replace(day=1).isoformat()


def _value(plan: Plan, e: Event, dim: str) -> str:
    if dim.startswith(PROPS_PREFIX):
        return str(e["props"].get(dim[len(PROPS_PREFIX) :], NO_PROP))
    if dim.startswith("time"):
        return _bucket(plan, e["time"])
    return str(e[dim])


def _matches(plan: Plan, e: Event, f: Filter | None) -> bool:
    if f is None:
        return True
    if isinstance(f, And):
        return all(_matches(plan, e, i) for i in f.items)
    if isinstance(f, Or):
        return any(_matches(plan, e, i) for i in f.items)
    if isinstance(f, Not):
        return not _matches(plan, e, f.item)
    assert isinstance(f, Condition)
    if f.dimension == "event:goal":
        return any(g.matches(e["event:name"], e["event:page"]) for g in f.goals)
    value = _value(plan, e, f.dimension)
    if not f.case_sensitive:
        value = ascii_lower(value)
    if f.base_op == "is":
        found = value in f.folded()
    elif f.base_op == "contains":
        found = any(c in value for c in f.folded())
    else:
        found = any(p.search(value) for p in f.patterns)
    return found != f.negated


def _sort_key(plan: Plan, row: Mapping[str, Any], counts: Mapping[str, int]) -> list[Any]:
    key: list[Any] = []
    for name, direction in plan.order_by:
        if name in plan.dimensions:
            # Byte order, as the stores sort strings: reversed for desc by inverting bytes.
            value: Any = row[f"d{plan.dimensions.index(name)}"].encode()
            if direction == "desc":
                value = _Reversed(value)
        else:
            number = scaled(name, counts) if name in RATIOS else int(counts[name])
            value = number or 0
            if direction == "desc":
                value = -value
        key.append(value)
    key += [row[f"d{i}"].encode() for i in range(len(plan.dimensions))]
    return key


class _Reversed:
    """Sorts in the reverse order of the wrapped value."""

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value


def _visit_events(plan: Plan, footprints: Iterable[Footprint]) -> list[Event]:
    """The site's footprints in the range (bots out unless asked), each with its visit."""
    start, end = plan.range.start.timestamp(), plan.range.end.timestamp()
    events = [
        _event(fp)
        for fp in footprints
        if fp.site == plan.site
        and (plan.include_bots or not fp.is_bot)
        and start <= int(fp.timestamp // 1) < end
    ]
    _visits(events)
    return events


def funnel_reference(
    plan: Plan, steps: Sequence[Goal], footprints: Iterable[Footprint]
) -> dict[str, int]:
    """What ``api.query.funnel.funnel_counts`` answers: all_visitors, step1…stepN."""
    selected = [e for e in _visit_events(plan, footprints) if _matches(plan, e, plan.filter)]
    visits: dict[Any, list[Event]] = defaultdict(list)
    for e in sorted(selected, key=lambda e: (e["ts"], e["eid"].encode())):
        visits[e["visit"]].append(e)
    reached: list[set[str]] = [set() for _ in steps]
    for (vkey, _), mine in visits.items():
        k = 0  # the first footprint completing the next step, one after the other
        for e in mine:
            if k < len(steps) and steps[k].matches(e["event:name"], e["event:page"]):
                reached[k].add(vkey)
                k += 1
    counts = {"all_visitors": len({e["vkey"] for e in selected})}
    counts.update({f"step{k}": len(r) for k, r in enumerate(reached, 1)})
    return counts


def reference(
    plan: Plan, footprints: Iterable[Footprint]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rows and totals a store would return for ``plan`` over these stored footprints."""
    events = _visit_events(plan, footprints)
    selected = [e for e in events if _matches(plan, e, plan.filter)]
    totals = {}
    if {"percentage", "conversion_rate"} & set(plan.metrics):
        conversion = [e for e in events if _matches(plan, e, plan.totals_filter)]
        totals = {
            "total_visitors": len({e["vkey"] for e in selected}),
            "conversion_visitors": len({e["vkey"] for e in conversion}),
        }

    groups: dict[tuple[str, ...], list[Event]] = defaultdict(list)
    for e in selected:
        values: list[list[str]] = []
        for dim in plan.dimensions:
            if dim == "event:goal":
                values.append(
                    [g.name for g in plan.goals if g.matches(e["event:name"], e["event:page"])]
                )
            else:
                values.append([_value(plan, e, dim)])
        keys: list[tuple[str, ...]] = [()]
        for options in values:
            keys = [(*k, v) for k in keys for v in options]
        for key in keys:
            groups[key].append(e)
    if not plan.dimensions:
        groups.setdefault((), [])

    rows = []
    for key, mine in groups.items():
        visits = {e["visit"]: e for e in mine}
        counts = {
            "visitors": len({e["vkey"] for e in mine}),
            "visits": len(visits),
            "pageviews": sum(e["is_pv"] for e in mine),
            "events": len(mine),
            "visit_pageviews": sum(v["v_pageviews"] for v in visits.values()),
            "bounces": sum(v["v_bounce"] for v in visits.values()),
            "duration": sum(v["v_duration"] for v in visits.values()),
        }
        if not {"views_per_visit", "bounce_rate", "visit_duration"} & set(plan.metrics):
            counts.update(visit_pageviews=0, bounces=0, duration=0)
        rows.append({**{f"d{i}": v for i, v in enumerate(key)}, **counts})
    rows.sort(key=lambda r: _sort_key(plan, r, {**r, **totals}))
    for row in rows:
        row["total_rows"] = len(rows)
    if plan.dimensions:
        rows = rows[plan.offset : plan.offset + plan.limit]
    return [{k: r[k] for k in (*(f"d{i}" for i in range(len(plan.dimensions))), *AGGREGATES,
                                "total_rows")} for r in rows], totals  # fmt: skip
