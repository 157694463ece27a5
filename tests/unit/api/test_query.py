"""The query API's pure logic: request checks, date ranges, regular expressions, metric rounding,
and the plain-Python reference on hand-counted visits."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from api.query import QueryError, QueryRequest, plan, rows_to_results
from api.query.dates import bucket_labels
from api.query.metrics import display, scaled
from api.query.reference import reference
from api.query.regex import PatternError, compile_pattern, wildcard_pattern
from footprint.schema import Footprint

NOW = datetime(2026, 11, 22, 15, 30, 45, tzinfo=UTC)  # a Sunday


def _plan(**fields: Any) -> Any:
    body = {"site_id": "example.com", "metrics": ["visitors"], "date_range": "7d", **fields}
    return plan(QueryRequest.model_validate(body), NOW)


def _error(**fields: Any) -> str:
    with pytest.raises(QueryError) as e:
        _plan(**fields)
    return str(e.value)


# --- requests ---------------------------------------------------------------------------------


def test_plausibles_minimal_request_is_accepted_with_its_defaults() -> None:
    p = _plan()
    assert p.site == "example.com"
    assert p.order_by == (("visitors", "desc"),)
    assert (p.limit, p.offset, p.include_bots) == (10_000, 0, False)
    assert p.echo["date_range"] == ["2026-11-16T00:00:00+00:00", "2026-11-22T23:59:59+00:00"]


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"metrics": ["visitors", "scroll_depth"]}, "metrics[1]"),
        ({"dimensions": ["visit:country"]}, "dimensions[0]"),
        ({"dimensions": ["event:props:"]}, "dimensions[0]"),
        ({"dimensions": ["time:day", "time:hour"]}, "at most one time dimension"),
        ({"metrics": ["percentage"]}, "percentage needs at least one dimension"),
        ({"metrics": ["conversion_rate"]}, "conversion_rate needs an event:goal filter"),
        ({"dimensions": ["event:goal"]}, "event:goal needs goals: configure"),
        ({"metrics": ["bounce_rate"], "dimensions": ["event:page"]}, "event dimensions"),
        ({"filters": [["is", "visit:country", ["EE"]]]}, "filters[0][1]"),
        ({"filters": [["equals", "event:page", ["/"]]]}, "filters[0]: unknown operator"),
        ({"filters": [["is", "event:page", "/"]]}, "filters[0][2]"),
        ({"filters": [["is", "event:page", []]]}, "filters[0][2]"),
        ({"filters": [["is", "event:page", ["/\x00"]]]}, "filters[0][2]: a clause has no NUL"),
        ({"filters": [["is", "time:day", ["2024-01-01"]]]}, "time dimensions cannot be filtered"),
        ({"filters": [["and", [["is", "event:page", [1]]]]]}, "filters[0][1][0][2]"),
        ({"filters": [["not", ["matches", "event:page", ["\\bword"]]]]}, "filters[0][1][2]"),
        ({"filters": [["contains", "event:goal", ["Sign"]]]}, "event:goal takes the is operator"),
        ({"filters": [["matches", "event:page", ["a"], {"case_sensitive": False}]]}, "[3]"),
        ({"date_range": "8d"}, "date_range: unknown shortcut"),
        ({"date_range": ["2024-02-01", "2024-01-01"]}, "date_range"),
        ({"date_range": ["2024-01-01", "2024-01-02T00:00:00Z"]}, "both ends"),
        ({"date_range": ["1999-12-31", "2000-01-01"]}, "date_range"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"order_by": [["pageviews", "desc"]]}, "order_by[0]"),
        ({"include": {"time_labels": True}}, "include.time_labels: needs a time dimension"),
    ],
)
def test_invalid_queries_name_the_offending_field(fields: dict[str, Any], names: str) -> None:
    assert names in _error(**fields)


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": ["visitors"], "date_range": "7d"},  # no site_id
        {"site_id": "a", "metrics": [], "date_range": "7d"},
        {"site_id": "a\x00", "metrics": ["visitors"], "date_range": "7d"},
        {"site_id": "a", "metrics": ["visitors"], "date_range": "7d", "interval": "date"},
        {"site_id": "a", "metrics": ["visitors"], "date_range": "7d", "pagination": {"limit": 0}},
        {"site_id": "a", "metrics": ["visitors"], "date_range": "7d",
         "pagination": {"limit": 10_001}},
        {"site_id": "a", "metrics": ["visitors"], "date_range": "7d", "order_by": [["x", "up"]]},
        {"site_id": "a", "metrics": ["visitors"], "date_range": "7d", "include": {"foo": True}},
    ],
)  # fmt: skip
def test_malformed_bodies_are_refused_by_the_model(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        QueryRequest.model_validate(body)


def test_filters_nest_and_goals_are_read_as_plausible_names_them() -> None:
    p = _plan(
        metrics=["visitors", "conversion_rate"],
        dimensions=["event:goal"],
        filters=[
            ["is", "event:goal", ["Signup", "Visit /blog/**", "Signup"]],
            [
                "or",
                [["contains", "visit:source", ["google"]], ["not", ["is", "visit:os", ["Mac"]]]],
            ],
            ["is", "event:props:plan", ["pro"]],
        ],
    )
    assert [g.name for g in p.goals] == ["Signup", "Visit /blog/**"]
    assert p.goals[0].matches("Signup", "/") and not p.goals[0].matches("pageview", "/")
    assert p.goals[1].matches("pageview", "/blog/2024/post")
    assert not p.goals[1].matches("Signup", "/blog/2024/post")
    # conversion_rate's denominator keeps the visit filter, not the goal or props ones
    assert p.totals_filter.__class__.__name__ == "Or"


def test_time_dimension_picks_its_bucket_from_the_range() -> None:
    assert _plan(dimensions=["time"], date_range="day").interval == "hour"
    assert _plan(dimensions=["time"], date_range="7d").interval == "day"
    assert _plan(dimensions=["time"], date_range="12mo").interval == "month"
    assert _plan(dimensions=["time"], date_range=["2024-01-15", "2024-02-14"]).interval == "day"
    assert _plan(dimensions=["time"], date_range=["2024-01-15", "2024-02-15"]).interval == "month"


# --- date ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("day", date(2026, 11, 22), date(2026, 11, 22)),
        ("7d", date(2026, 11, 16), date(2026, 11, 22)),
        ("30d", date(2026, 10, 24), date(2026, 11, 22)),
        ("month", date(2026, 11, 1), date(2026, 11, 30)),
        ("6mo", date(2026, 6, 1), date(2026, 11, 30)),
        ("12mo", date(2025, 12, 1), date(2026, 11, 30)),
        ("year", date(2026, 1, 1), date(2026, 12, 31)),
        ("all", date(2000, 1, 1), date(2026, 11, 22)),
        (["2024-02-28", "2024-03-01"], date(2024, 2, 28), date(2024, 3, 1)),
    ],
)
def test_date_ranges_cover_whole_local_days(value: Any, first: date, last: date) -> None:
    r = _plan(date_range=value, timezone="Europe/Paris").range
    assert (r.first_day, r.last_day) == (first, last)
    assert r.start == datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(
        hours=1 if first.month not in range(4, 11) else 2
    )


def test_time_zone_moves_today_and_the_day_boundaries() -> None:
    r = _plan(date_range="day", timezone="Pacific/Kiritimati").range  # UTC+14: already Monday
    assert r.first_day == date(2026, 11, 23)
    assert r.start == datetime(2026, 11, 22, 10, tzinfo=UTC)
    assert r.end - r.start == timedelta(days=1)


def test_datetime_ranges_include_their_last_second() -> None:
    r = _plan(date_range=["2024-01-01T12:00:00.7+02:00", "2024-01-01T15:59:59.2+02:00"]).range
    assert r.start == datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC)
    assert r.end == datetime(2024, 1, 1, 14, 0, 0, tzinfo=UTC)
    r = _plan(date_range="24h").range
    assert r.end - r.start == timedelta(hours=24, seconds=1)


def test_bucket_labels_as_plausible_writes_them() -> None:
    r = _plan(date_range=["2024-08-20", "2024-08-20"]).range
    hours = bucket_labels("hour", r)
    assert hours[:2] == ["2024-08-20 00:00:00", "2024-08-20 01:00:00"] and len(hours) == 24
    r = _plan(date_range=["2024-08-14", "2024-09-03"]).range  # a Wednesday to a Tuesday
    assert bucket_labels("week", r) == ["2024-08-14", "2024-08-19", "2024-08-26", "2024-09-02"]
    assert bucket_labels("month", r) == ["2024-08-01", "2024-09-01"]


# --- regular expressions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "found"),
    [
        (r"^/user/\d+$", "/user/42", True),
        (r"^/user/\d+$", "/user/42\n", False),  # $ is the end of the value, as in the stores
        (r"a.b", "a\nb", True),  # . matches a newline, as in the stores
        (r"^.$", "é", True),  # one character, not one byte
        (r"[^\w.]", "a.b", False),
        (r"(?:blog|news)/", "/news/x", True),
        (r"o{2,3}", "foo", True),
        (r"[]a]", "]", True),
    ],
)
def test_patterns_match_as_the_stores_do(pattern: str, value: str, found: bool) -> None:
    assert compile_pattern(pattern).search(value) is found


@pytest.mark.parametrize(
    "pattern",
    [r"\bword", r"(?i)a", "a{", "a{300}", "*a", "a**", "(a", "a)", "[z-a]", "[[:alpha:]]",
     "\\", r"[\D]", r"\1", "x" * 1001],
)  # fmt: skip
def test_patterns_outside_the_common_subset_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)


def test_patterns_are_rewritten_without_locale_dependent_classes() -> None:
    assert compile_pattern(r"\d\w\s").sql == r"[0-9][0-9A-Za-z_][ \t\n\r\f\v]"


def test_goal_wildcards() -> None:
    page = wildcard_pattern("/blog/*")
    assert page.search("/blog/post") and not page.search("/blog/a/b")
    assert wildcard_pattern("/blog/**").search("/blog/a/b")
    assert not wildcard_pattern("/a.b").search("/axb")
    assert re.compile(page.sql)  # valid for the stores too


# --- metric values ----------------------------------------------------------------------------


def test_ratios_round_half_up_like_plausible_shows_them() -> None:
    counts = {"visits": 8, "visit_pageviews": 13, "bounces": 3, "duration": 20,
              "visitors": 1, "total_visitors": 8, "conversion_visitors": 0}  # fmt: skip
    assert display("views_per_visit", scaled("views_per_visit", counts)) == 1.63  # 1.625
    assert display("bounce_rate", scaled("bounce_rate", counts)) == 38  # 37.5
    assert display("visit_duration", scaled("visit_duration", counts)) == 3  # 2.5
    assert display("percentage", scaled("percentage", counts)) == 12.5
    assert display("conversion_rate", scaled("conversion_rate", counts)) == 0
    assert scaled("percentage", {**counts, "total_visitors": 0}) is None


# --- the reference, counted by hand -----------------------------------------------------------

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _fp(minutes: float, link: str, visitor: str = "v1", **fields: Any) -> Footprint:
    return Footprint(
        event_id=uuid.uuid4(),
        method="GET",
        link=link,
        footprint_time=T0 + timedelta(minutes=minutes),
        site="example.com",
        visitor_id=visitor,
        **fields,
    )


DATA = [
    # v1: a visit of three pageviews (0, 10, 40 min: each gap ≤ 30 min), from Google
    _fp(0, "/", referrer="https://www.google.com/search", referrer_host="www.google.com"),
    _fp(10, "/pricing"),
    _fp(40, "/signup", name="Signup", props={"plan": "pro"}),
    # v1 again 31 minutes later: a new visit, a bounce
    _fp(71, "/blog"),
    # v2: exactly 30 minutes apart is still one visit
    _fp(0, "/blog", "v2", utm_source="newsletter"),
    _fp(30, "/blog/post", "v2"),
    # no visitor id: a visitor and a visit of its own; a bot; another site
    _fp(5, "/", ""),
    _fp(5, "/", "bot", is_bot=True),
    Footprint(method="GET", link="/", footprint_time=T0, site="other.org", event_id=uuid.uuid4()),
]


def _run(**fields: Any) -> list[dict[str, Any]]:
    p = _plan(date_range=["2026-11-20", "2026-11-20"], **fields)
    rows, totals = reference(p, DATA)
    return [r.model_dump() for r in rows_to_results(p, rows, totals)]


def test_reference_counts_visits_of_thirty_minutes_inactivity() -> None:
    assert _run(
        metrics=[
            "visitors",
            "visits",
            "pageviews",
            "events",
            "views_per_visit",
            "bounce_rate",
            "visit_duration",
        ]
    ) == [  # fmt: skip
        # 3 visitors; 4 visits; 6 pageviews + 1 Signup; pageviews per visit 2+1+2+1 = 6/4;
        # bounces: the 71-minute one and the visitor without id; durations (40+0+30+0) min / 4
        {"metrics": [3, 4, 6, 7, 1.5, 50, 1050], "dimensions": []}
    ]


def test_reference_takes_visit_attributes_from_the_first_footprint() -> None:
    assert _run(metrics=["visits", "percentage"], dimensions=["visit:source"]) == [
        {"metrics": [2, 66.7], "dimensions": ["Direct / None"]},  # v1's 2nd visit, anonymous
        {"metrics": [1, 33.3], "dimensions": ["google.com"]},
        {"metrics": [1, 33.3], "dimensions": ["newsletter"]},
    ]
    assert _run(metrics=["visits"], dimensions=["visit:exit_page"]) == [
        {"metrics": [1], "dimensions": ["/"]},
        {"metrics": [1], "dimensions": ["/blog"]},
        {"metrics": [1], "dimensions": ["/blog/post"]},
        {"metrics": [1], "dimensions": ["/signup"]},
    ]


def test_reference_goals_and_conversion_rate() -> None:
    rows = _run(
        metrics=["visitors", "events", "conversion_rate"],
        dimensions=["event:goal"],
        filters=[["is", "event:goal", ["Signup", "Visit /blog*"]]],
    )
    assert rows == [
        # /blog by v1 and v2 (of 3 visitors); * stops at /, so /blog/post is no conversion
        {"metrics": [2, 2, 66.7], "dimensions": ["Visit /blog*"]},
        {"metrics": [1, 1, 33.3], "dimensions": ["Signup"]},
    ]


def test_reference_event_filters_select_footprints_visit_filters_whole_visits() -> None:
    assert _run(metrics=["pageviews"], filters=[["is", "event:page", ["/pricing"]]]) == [
        {"metrics": [1], "dimensions": []}
    ]
    assert _run(
        metrics=["pageviews", "bounce_rate"], filters=[["is", "visit:entry_page", ["/"]]]
    ) == [{"metrics": [3, 50], "dimensions": []}]  # v1's first visit and the anonymous one


def test_reference_props_and_bots() -> None:
    assert _run(metrics=["events"], dimensions=["event:props:plan"]) == [
        {"metrics": [6], "dimensions": ["(none)"]},
        {"metrics": [1], "dimensions": ["pro"]},
    ]
    assert _run(metrics=["visitors"], include={"bots": True}) == [
        {"metrics": [4], "dimensions": []}
    ]
