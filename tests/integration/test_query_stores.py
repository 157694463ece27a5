"""POST /api/v2/query's engine on real stores: PostgreSQL == ClickHouse (chdb) == the reference.

Hypothesis generates footprints (several visitors, a neighbouring site, bots, times over a few
days on both sides of the 30-minute visit gap, names, props, sources, agents) and queries
(metrics × dimensions × nested filters × date ranges × time zones × order × pages). Each example
stores its footprints under a site of its own, through the real sinks, and every query must give
the same rows in both stores and in the plain-Python reference.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from api.query import QueryRequest, plan, rows_to_results, run
from api.query.funnel import funnel_counts
from api.query.goals import Goal
from api.query.reference import funnel_reference, reference
from footprint.clickhouse import ClickHouse, chdb_open_path, connect
from footprint.migrate import apply_clickhouse, apply_postgres
from footprint.schema import Footprint
from footprint.stack import PostgresServer, RedisServer
from streams.sinks.base import Batch
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.postgres import PostgresSink
from tests.integration.conftest import fresh_postgres_url

pytestmark = pytest.mark.integration

# Footprints are dated in the last days (the schema refuses the future), the queries' "now" is
# fixed after them.
ANCHOR = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=8)
NOW = ANCHOR + timedelta(days=4, hours=13)
NAMESPACE = uuid.UUID("6f2b3c1e-0000-4000-8000-000000000000")
SITES = itertools.count()

LINKS = ["/", "/blog", "/blog/post", "/Blog/Old", "/p/1", "/p/22", "/pricing"]
REFERRERS = [
    ("", ""),
    ("https://www.google.com/search", "www.google.com"),
    ("https://news.ycombinator.com/item", "news.ycombinator.com"),
    ("//t.co/abc", "t.co"),
]
GOALS = ["Signup", "Click", "Visit /blog*", "Visit /blog/**", "Visit /p/*", "Visit /"]
# The site's configured goals: their display names are what event:goal shows and filters take.
CONFIGURED = [
    Goal.stored("Signed up", "Signup", None),
    Goal.stored("Blog", None, "/blog**"),
    Goal.stored("Visit /", None, "/"),
    Goal.stored("Any product", None, "/p/*"),
]
FUNNEL_GOALS = [*GOALS, "Visit /**", "Visit /**", "Visit /**", "Visit /blog", "Signup"]
EVENT_DIMS = ["event:page", "event:name", "event:route", "event:status", "event:method",
              "event:props:plan", "event:props:color"]  # fmt: skip
VISIT_DIMS = ["visit:source", "visit:referrer", "visit:utm_medium", "visit:utm_source",
              "visit:utm_campaign", "visit:utm_content", "visit:utm_term", "visit:browser",
              "visit:os", "visit:device", "visit:entry_page", "visit:exit_page"]  # fmt: skip
TIME_DIMS = ["time", "time:minute", "time:hour", "time:day", "time:week", "time:month"]
CLAUSES = ["/", "/blog", "/blog/post", "pageview", "Signup", "google.com", "Direct / None",
           "(not set)", "(none)", "Chrome", "Mac", "pro", "Zürich", "newsletter", "200", "GET",
           "/p/{id}", "o", "B", "blog", "t.co/abc", ""]  # fmt: skip
PATTERNS = [r"^/blog", r"post$", r"^/p/\d+$", r"(?:blog|p)/", r".", r"^$", r"o{2,}", r"[^/]+$",
            r"^[A-Z]", r"\.com"]  # fmt: skip
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
DAY = ANCHOR.date()
RANGES: list[Any] = [
    "day", "7d", "28d", "all", "month", "24h",
    [str(DAY), str(DAY + timedelta(days=2))],
    [str(DAY + timedelta(days=1)), str(DAY + timedelta(days=1))],
    [(ANCHOR + timedelta(hours=7)).isoformat(), (ANCHOR + timedelta(days=2, hours=3)).isoformat()],
]  # fmt: skip

footprint_fields = st.fixed_dictionaries(
    {
        # seconds after the previous footprint of the chain: across the 30-minute visit gap
        "gap": st.sampled_from([0, 1, 60, 1799, 1800, 1801, 7200]),
        "micro": st.sampled_from([0, 0, 999_999]),
        "link": st.sampled_from(LINKS),
        "name": st.sampled_from(["pageview", "pageview", "pageview", "Signup", "Click"]),
        "props": st.dictionaries(
            st.sampled_from(["plan", "color"]), st.sampled_from(["pro", "free", "", "Zürich"])
        ),
        "referrer": st.sampled_from(REFERRERS),
        "utm_source": st.sampled_from(["", "", "newsletter", "Twitter"]),
        "utm_medium": st.sampled_from(["", "email"]),
        "utm_campaign": st.sampled_from(["", "launch"]),
        "browser": st.sampled_from(["", "Chrome", "Firefox"]),
        "os": st.sampled_from(["", "Mac", "GNU/Linux"]),
        "device": st.sampled_from(["", "Desktop", "Mobile"]),
        "is_bot": st.sampled_from([False] * 5 + [True]),
        "route": st.sampled_from(["", "/p/{id}"]),
        "status_code": st.sampled_from([0, 200, 404]),
        "method": st.sampled_from(["GET", "GET", "POST"]),
        "other_site": st.sampled_from([False] * 7 + [True]),
    }
)
# A visitor's footprints one after another from a start on a 15-minute grid over 5 days (drawn
# evenly: hypothesis's integers lean to 0); chains of one visitor may interleave.
chains = st.tuples(
    st.sampled_from(["", "a", "b", "c", "d"]),
    st.tuples(st.sampled_from(range(5)), st.sampled_from(range(96))).map(
        lambda t: t[0] * 86_400 + t[1] * 900
    ),
    st.lists(footprint_fields, min_size=1, max_size=6),
)

condition = st.one_of(
    st.tuples(
        st.sampled_from(["is", "is_not", "contains", "contains_not"]),
        st.sampled_from(EVENT_DIMS + VISIT_DIMS),
        st.lists(st.sampled_from(CLAUSES), min_size=1, max_size=3),
        st.sampled_from([None, None, {"case_sensitive": False}]),
    ).map(lambda t: [t[0], t[1], t[2]] + ([t[3]] if t[3] else [])),
    st.tuples(
        st.sampled_from(["matches", "matches_not"]),
        st.sampled_from(EVENT_DIMS + VISIT_DIMS),
        st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2),
    ).map(list),
    st.lists(st.sampled_from(GOALS), min_size=1, max_size=2).map(
        lambda goals: ["is", "event:goal", goals]
    ),
)
filters = st.recursive(
    condition,
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, min_size=1, max_size=3)).map(
            list
        ),
        inner.map(lambda f: ["not", f]),
    ),
    max_leaves=4,
)


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    goals = draw(st.lists(st.sampled_from(GOALS), min_size=1, max_size=3, unique=True))
    if draw(st.integers(0, 2)):  # a goal filter in a third of the queries
        goals = []
    dims = draw(st.lists(st.sampled_from(EVENT_DIMS + VISIT_DIMS), max_size=2, unique=True))
    if draw(st.booleans()):
        dims = [draw(st.sampled_from(TIME_DIMS)), *dims[:1]]
    if draw(st.booleans()):  # without a goal filter: by the site's configured goals
        dims = ["event:goal", *dims[:1]]
    pool = ["visitors", "visits", "pageviews", "events"]
    if not any(d.startswith("event:") for d in dims):
        pool += ["views_per_visit", "bounce_rate", "visit_duration"]
    if dims:
        pool.append("percentage")
    if goals or "event:goal" in dims:
        pool.append("conversion_rate")
    metrics = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
    body: dict[str, Any] = {
        "metrics": metrics,
        "date_range": draw(st.sampled_from(RANGES)),
        "dimensions": dims,
        "filters": ([["is", "event:goal", goals]] if goals else [])
        + [draw(filters) for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2])))],
        "timezone": draw(st.sampled_from(ZONES)),
        "pagination": {
            "limit": draw(st.integers(1, 30)),
            "offset": draw(st.sampled_from([0, 0, 2])),
        },
        "include": {"bots": draw(st.booleans()), "total_rows": draw(st.booleans())},
    }
    if draw(st.booleans()):
        names = metrics + dims
        body["order_by"] = draw(
            st.lists(
                st.tuples(st.sampled_from(names), st.sampled_from(["asc", "desc"])),
                min_size=1,
                max_size=2,
                unique_by=lambda o: o[0],
            ).map(lambda os: [list(o) for o in os])
        )
    return body


@dataclass
class Stores:
    loop: asyncio.AbstractEventLoop
    pool: AsyncConnectionPool
    sink: PostgresSink
    clickhouse: ClickHouse
    compared: list[int]
    funnels: list[int]  # visitors completing each funnel compared


@pytest.fixture(scope="module")
def query_stores(
    stores: tuple[PostgresServer, RedisServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stores]:
    postgres, _ = stores
    database = f"q_{uuid.uuid4().hex[:8]}"
    url = fresh_postgres_url(postgres, database)
    apply_postgres(url)
    # One chdb path per process: join the one already open, if any.
    path = chdb_open_path() or str(tmp_path_factory.mktemp("chdb") / "data")
    clickhouse = connect(f"chdb://{Path(path)}?database={database}")
    apply_clickhouse(clickhouse)
    loop = asyncio.new_event_loop()
    pool = AsyncConnectionPool(url, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    sink = PostgresSink(url)
    loop.run_until_complete(pool.open())
    loop.run_until_complete(sink.open())
    compared: list[int] = []
    funnels: list[int] = []
    try:
        yield Stores(loop, pool, sink, clickhouse, compared, funnels)
    finally:
        print(f"queries compared: {len(compared)}, rows compared: {sum(compared)}, "
              f"non-empty answers: {sum(1 for n in compared if n)}; funnels compared: "
              f"{len(funnels)}, past the first step: {sum(1 for n in funnels if n)}")  # fmt: skip
        loop.run_until_complete(sink.close())
        loop.run_until_complete(pool.close())
        loop.close()
        clickhouse.close()


def _footprints(site: str, drawn: list[tuple[str, int, list[dict[str, Any]]]]) -> list[Footprint]:
    out: list[Footprint] = []
    for visitor, start, fields in drawn:
        at = start
        for f in fields:
            at += f["gap"]
            referrer, host = f["referrer"]
            out.append(
                Footprint(
                    event_id=uuid.uuid5(NAMESPACE, f"{site}/{len(out)}"),
                    footprint_time=ANCHOR + timedelta(seconds=at, microseconds=f["micro"]),
                    site=("other-" + site) if f["other_site"] else site,
                    visitor_id=visitor,
                    referrer=referrer,
                    referrer_host=host,
                    **{
                        k: v
                        for k, v in f.items()
                        if k not in ("gap", "micro", "referrer", "other_site")
                    },
                )  # fmt: skip
            )
    return out


def _stored(s: Stores, drawn: list[tuple[str, int, list[dict[str, Any]]]]) -> tuple[str, Any]:
    """A site of its own, its footprints written to both stores through the real sinks."""
    site = f"s{next(SITES)}.test"
    footprints = _footprints(site, drawn)
    batch = Batch(footprints=footprints)
    s.loop.run_until_complete(s.sink.write(batch))
    ClickHouseSink._write(s.clickhouse, batch)
    return site, footprints


def _rows(response: Any) -> list[tuple[list[str], list[Any]]]:
    return [(r.dimensions, r.metrics) for r in response.results]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drawn=st.lists(chains, min_size=2, max_size=16),
    bodies=st.lists(queries(), min_size=1, max_size=4),
)
def test_postgres_clickhouse_and_reference_agree(
    query_stores: Stores,
    drawn: list[tuple[str, int, list[dict[str, Any]]]],
    bodies: list[dict[str, Any]],
) -> None:
    s = query_stores
    site, footprints = _stored(s, drawn)
    for body in bodies:
        p = plan(QueryRequest.model_validate({"site_id": site, **body}), NOW, CONFIGURED)
        rows, totals = reference(p, footprints)
        expected = [(r.dimensions, r.metrics) for r in rows_to_results(p, rows, totals)]
        pg = s.loop.run_until_complete(run("postgres", p, pool=s.pool))
        ch = s.loop.run_until_complete(run("clickhouse", p, clickhouse=s.clickhouse))
        for store, answer in (("postgres", pg), ("clickhouse", ch)):
            got = _rows(answer)
            assert [d for d, _ in got] == [d for d, _ in expected], (store, body)
            assert [m for _, m in got] == [pytest.approx(m) for _, m in expected], (store, body)
            if p.total_rows:
                assert answer.meta.total_rows == (rows[0]["total_rows"] if rows else 0) or (
                    not rows and p.offset
                ), (store, body)
        s.compared.append(len(expected))


# Funnels need visits of several footprints: gaps mostly within a visit, one past the gap.
funnel_chains = st.tuples(
    chains.map(lambda c: c[0]),
    chains.map(lambda c: c[1]),
    st.lists(
        st.tuples(footprint_fields, st.sampled_from([0, 1, 1, 60, 600, 1799, 1801])).map(
            lambda t: {**t[0], "gap": t[1]}
        ),
        min_size=3,
        max_size=8,
    ),
)


@st.composite
def funnels(draw: st.DrawFn) -> dict[str, Any]:
    return {
        # "Visit /**" overlaps every pageview goal: one footprint must not complete two steps.
        "steps": draw(st.lists(st.sampled_from(FUNNEL_GOALS), min_size=2, max_size=3, unique=True)),
        # Mostly the whole history: funnels complete more often over more visits.
        "date_range": draw(st.sampled_from(["all"] * 9 + RANGES)),
        "filters": [draw(filters) for _ in range(draw(st.sampled_from([0, 0, 1])))],
        "timezone": draw(st.sampled_from(ZONES)),
        "include": {"bots": draw(st.booleans())},
    }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drawn=st.lists(funnel_chains, min_size=2, max_size=12),
    asked=st.lists(funnels(), min_size=1, max_size=3),
)
def test_funnels_agree_in_postgres_clickhouse_and_reference(
    query_stores: Stores,
    drawn: list[tuple[str, int, list[dict[str, Any]]]],
    asked: list[dict[str, Any]],
) -> None:
    s = query_stores
    site, footprints = _stored(s, drawn)
    for body in asked:
        request = {k: v for k, v in body.items() if k != "steps"}
        p = plan(
            QueryRequest.model_validate({"site_id": site, "metrics": ["visitors"], **request}), NOW
        )
        steps = [Goal.parse(name) for name in body["steps"]]
        expected = funnel_reference(p, steps, footprints)
        pg = s.loop.run_until_complete(funnel_counts("postgres", p, steps, pool=s.pool))
        ch = s.loop.run_until_complete(
            funnel_counts("clickhouse", p, steps, clickhouse=s.clickhouse)
        )
        assert pg == expected, ("postgres", body)
        assert ch == expected, ("clickhouse", body)
        s.funnels.append(expected["step2"])
