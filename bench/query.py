"""The Stats API v2 on PostgreSQL vs ClickHouse at 1M and 10M footprints (issue 12).

``python -m bench query [--rows 1000000,10000000]``. The data set (``bench/dataset.py``: 3 sites,
90 days, visits of 1–9 footprints, returning visitors, referrers, UTM tags, agents, custom events)
is generated inside each store by the same hash-based SQL, so the rows are identical; aggregate
checksums per site prove it before anything is timed.

Three questions, asked through Footprint's own query path (what ``POST /api/v2/query`` and
``POST /api/v2/funnel`` run: ``api.query.plan`` + ``api.query.run``, and
``api.funnels.funnel_report`` on a funnel stored through ``api.goals.GoalStore``), over the 30
days ending today on the largest site:

1. breakdown: ``visit:source`` × visitors, visits, pageviews, bounce_rate where ``event:page``
   contains ``/blog``;
2. funnel: Visit /pricing → Visit /signup → Signup;
3. timeseries: ``time:day`` × visitors, pageviews.

Each is run once to warm up, then ``RUNS`` times (median and min), on PostgreSQL (migrated,
partitioned by month, ``VACUUM ANALYZE`` after the load) and ClickHouse embedded (chdb, the
default store). Both answers must be identical, as the API promises; a mismatch fails the
benchmark. The ClickHouse 18.16 server is asked too: the query API refuses it (no window
functions: 501), so its column says so, with the reason, and no data is loaded there.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from api.funnels import funnel_report
from api.goals import GoalStore
from api.models.funnels import FunnelQuery
from api.query import QueryRequest, UnsupportedServer, plan
from api.query import run as run_query
from api.query.postgres import DIALECT
from api.query.sql import build
from bench.common import Output, Progress, Stack, loadavg, tag, wait_until
from bench.dataset import SITES, SPAN, ClickHouseGen, PostgresGen
from footprint.clickhouse import ClickHouse, connect
from footprint.migrate import apply_clickhouse
from footprint.settings import Settings

__all__ = ["QUERIES", "SIZES", "run_benchmark"]

SIZES = {"tiny": [2_000], "small": [100_000, 1_000_000], "full": [1_000_000, 10_000_000]}
RUNS = {"tiny": 2, "small": 5, "full": 5}
PG_CHUNK = 1_000_000
SITE = SITES[0]
# The benchmark waits for every answer; the API would stop a query at FOOTPRINT_QUERY_TIMEOUT
# (the report flags answers slower than its default).
TIMEOUT = 3600.0
DEFAULT_TIMEOUT = float(Settings.model_fields["query_timeout"].default)
QUERIES = {
    "breakdown": "`visit:source` × visitors, visits, pageviews, bounce_rate where `event:page` "
    "contains `/blog`",
    "funnel": "Visit /pricing → Visit /signup → Signup, stored through `api.goals.GoalStore`",
    "timeseries": "`time:day` × visitors, pageviews",
}
STEPS = (("page", "/pricing"), ("page", "/signup"), ("event", "Signup"))
STORES = ("PostgreSQL", "chdb", "ClickHouse 18.16")

_PG_CHECKSUM = (
    "SELECT site, count(*), sum(extract(epoch FROM footprint_time)::bigint), "
    "count(DISTINCT visitor_id), count(DISTINCT link), count(DISTINCT event_id), "
    "sum(length(referrer) + length(utm_campaign) + length(browser) + length(os) "
    "+ length(device) + length(user_id) + length(name) + length(route)), "
    "sum(is_bot::int), sum(status_code), count(*) FILTER (WHERE props <> '{}') "
    "FROM user_footprint GROUP BY site ORDER BY site"
)
_CH_CHECKSUM = (
    "SELECT site, count(), sum(toUnixTimestamp(footprint_time)), uniqExact(visitor_id), "
    "uniqExact(link), uniqExact(event_id), sum(length(referrer) + length(utm_campaign) "
    "+ length(browser) + length(os) + length(device) + length(user_id) + length(name) "
    "+ length(route)), sum(is_bot), sum(status_code), countIf(length(`props.key`) > 0) "
    "FROM user_footprint GROUP BY site ORDER BY site"
)


def _checksums(rows: list[Any]) -> list[list[Any]]:
    return [[str(r[0]), *(int(v) for v in r[1:])] for r in rows]


def load_postgres(url: str, end: int, first: int, count: int) -> float:
    """Generate rows ``[first, first + count)`` in PostgreSQL; seconds, VACUUM ANALYZE apart."""
    gen = PostgresGen()
    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        done = 0
        while done < count:
            n = min(PG_CHUNK, count - done)
            conn.execute(gen.insert(end, first + done, n).encode())
            done += n
    return time.perf_counter() - began


def month_partitions(url: str, end: int) -> None:
    """The month partitions of the data's span, made before the load (as retention would)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT footprint_month_partition(m::date) FROM generate_series("
            "date_trunc('month', to_timestamp(%s) AT TIME ZONE 'UTC'), "
            "to_timestamp(%s) AT TIME ZONE 'UTC', interval '1 month') AS m",
            (end - SPAN, end + 86_400),
        )


def vacuum(url: str) -> float:
    """VACUUM ANALYZE: the planner's statistics, as autovacuum would have them."""
    with psycopg.connect(url, autocommit=True) as conn:
        began = time.perf_counter()
        conn.execute("VACUUM ANALYZE user_footprint")
        return time.perf_counter() - began


def load_clickhouse(client: ClickHouse, end: int, first: int, count: int) -> float:
    """Generate rows ``[first, first + count)`` in ClickHouse; seconds."""
    began = time.perf_counter()
    client.execute(ClickHouseGen().insert(end, first, count))
    return time.perf_counter() - began


def settle(client: ClickHouse) -> float:
    """Wait for the background merges the load started: timings then see the table at rest."""
    began = time.perf_counter()
    wait_until(
        lambda: (
            not client.execute(
                "SELECT count() FROM system.merges WHERE database = currentDatabase() "
                "AND table = 'user_footprint'"
            )[0][0]
        ),
        timeout=1800,
        interval=1.0,
        what="chdb's merges of user_footprint",
    )
    return time.perf_counter() - began


def checksums(pg_url: str, chdb: ClickHouse) -> dict[str, list[list[Any]]]:
    """Per site: rows, sum of times, distinct visitors, links and ids, text lengths, bots…"""
    with psycopg.connect(pg_url) as conn:
        pg = _checksums(conn.execute(_PG_CHECKSUM).fetchall())
    return {"postgres": pg, "chdb": _checksums(chdb.execute(_CH_CHECKSUM))}


async def make_funnel(pool: AsyncConnectionPool) -> int:
    """The funnel's goals and the funnel, stored as the goals API stores them; its id."""
    async with pool.connection() as conn:
        for site in SITES:
            await conn.execute(
                "INSERT INTO sites (domain) VALUES (%s) ON CONFLICT DO NOTHING", [site]
            )
    goals = GoalStore(pool)
    ids = []
    for kind, value in STEPS:
        page, event = (value, None) if kind == "page" else (None, value)
        goal, _ = await goals.add_goal(SITE, event, page, None)
        ids.append(goal.id)
    return (await goals.put_funnel(SITE, "Pricing to signup", ids)).id


def _ms(times: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


async def _timed(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[list[float], Any]:
    answer = await call()  # warm-up, and the answer compared across stores
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1000)
    return times, answer


def _calls(
    days: list[str],
    funnel_id: int,
    pool: AsyncConnectionPool,
    source: str,
    clickhouse: ClickHouse | None,
) -> dict[str, Callable[[], Awaitable[Any]]]:
    """The three questions for one store, each returning what a client compares."""
    now = datetime.now(UTC)
    common: dict[str, Any] = {"site_id": SITE, "date_range": days}
    breakdown = _breakdown_request(days)
    series = QueryRequest(**common, metrics=["visitors", "pageviews"], dimensions=["time:day"])
    kwargs: dict[str, Any] = {"pool": pool, "clickhouse": clickhouse, "timeout": TIMEOUT}

    async def query(request: QueryRequest) -> Any:
        answer = await run_query(source, plan(request, now), **kwargs)  # type: ignore[arg-type]
        return [[row.dimensions, row.metrics] for row in answer.results]

    async def funnel() -> Any:
        body = FunnelQuery(site_id=SITE, funnel_id=funnel_id, date_range=days)
        report = await funnel_report(body, source, **kwargs)  # type: ignore[arg-type]
        return report.model_dump(exclude={"meta"})

    return {
        "breakdown": lambda: query(breakdown),
        "funnel": funnel,
        "timeseries": lambda: query(series),
    }


async def measure(
    pg_url: str,
    chdb: ClickHouse,
    ch18: ClickHouse,
    days: list[str],
    funnel_id: int,
    runs: int,
    progress: Progress,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per question and store: times or the reason it cannot answer; the answers."""
    pool = AsyncConnectionPool(
        pg_url, min_size=1, max_size=2, open=False, kwargs={"autocommit": True}
    )
    await pool.open()
    timings: dict[str, dict[str, Any]] = {q: {} for q in QUERIES}
    answers: dict[str, dict[str, Any]] = {q: {} for q in QUERIES}
    try:
        stores = (
            ("PostgreSQL", "postgres", None),
            ("chdb", "clickhouse", chdb),
            ("ClickHouse 18.16", "clickhouse", ch18),
        )
        for label, source, client in stores:
            for name, call in _calls(days, funnel_id, pool, source, client).items():
                try:
                    times, answer = await _timed(call, runs)
                except UnsupportedServer as e:
                    timings[name][label] = {"unsupported": str(e)}
                    continue
                timings[name][label] = _ms(times) | {"runs": times}
                answers[name][label] = answer
                progress(f"  {label:<16} {name:<10} median {statistics.median(times):,.1f} ms")
    finally:
        await pool.close()
    return timings, answers


def _summary(name: str, answer: Any) -> str:
    """What the answer says, in a few words (the report shows it beside the times)."""
    if name == "funnel":
        steps = " → ".join(f"{s['visitors']:,}" for s in answer["steps"])
        return f"{answer['all_visitors']:,} visitors; steps {steps}"
    if name == "breakdown":
        top = answer[0] if answer else None
        lead = f"; top {top[0][0]}: {top[1][0]:,} visitors" if top else ""
        return f"{len(answer)} sources{lead}"
    total = sum(row[1][1] for row in answer)
    return f"{len(answer)} days, {total:,} pageviews"


def run(stack: Stack, size: str, out: Output, workdir: Path, rows: list[int] | None = None) -> Any:
    """Run the query benchmark at ``rows`` (default: the size's) and publish its figures."""
    return run_benchmark(stack, size, out, workdir, rows or SIZES[size])


def run_benchmark(
    stack: Stack, size: str, out: Output, workdir: Path, steps: list[int]
) -> dict[str, Any]:
    """Load each step's rows into both stores, check them, time the three questions."""
    progress = Progress("query")
    steps = sorted(steps)
    runs = RUNS[size]
    db = f"bench_query_{tag()}"
    pg_url = stack.postgres_db(db)
    ch18_url = stack.clickhouse_db(db)
    ch18 = connect(ch18_url)
    workdir.mkdir(parents=True, exist_ok=True)
    chdb = connect(f"chdb://{workdir / 'chdb'}")
    apply_clickhouse(chdb)
    now = datetime.now(UTC)
    end = int(now.replace(minute=0, second=0, microsecond=0).timestamp()) - 3600
    today = now.date()
    days = [(today - timedelta(days=29)).isoformat(), today.isoformat()]
    month_partitions(pg_url, end)
    funnel_id = asyncio.run(_with_pool(pg_url, make_funnel))
    progress(
        f"stores ready: PostgreSQL, chdb {chdb.server_version}, ClickHouse {ch18.server_version}"
    )

    loads: dict[int, dict[str, float]] = {}
    sums: dict[int, dict[str, Any]] = {}
    results: dict[int, dict[str, dict[str, Any]]] = {}
    summaries: dict[int, dict[str, str]] = {}
    counts: dict[int, dict[str, Any]] = {}
    mismatches: list[str] = []
    # Other engineers' test runs share the 2 cores: the report shows how busy the machine was.
    load_average: dict[int, list[float | None]] = {}
    loaded = 0
    try:
        for target in steps:
            count = target - loaded
            progress(f"generating {count:,} rows (to {target:,}) in PostgreSQL and chdb")
            pg_s = load_postgres(pg_url, end, loaded, count)
            vac_s = vacuum(pg_url)
            ch_s = load_clickhouse(chdb, end, loaded, count)
            merge_s = settle(chdb)
            loaded = target
            loads[target] = {
                "postgres_s": pg_s,
                "postgres_vacuum_s": vac_s,
                "chdb_s": ch_s,
                "chdb_merges_s": merge_s,
            }
            check = checksums(pg_url, chdb)
            same = check["postgres"] == check["chdb"]
            sums[target] = {"equal": same, "postgres": check["postgres"], "chdb": check["chdb"]}
            progress(
                f"loaded in {pg_s:.1f}s (+ VACUUM ANALYZE {vac_s:.1f}s) / {ch_s:.1f}s "
                f"(+ merges {merge_s:.1f}s); "
                f"checksums {'equal' if same else 'DIFFER'}: {check['postgres']}"
            )
            if not same:
                mismatches.append(f"checksums at {target:,} rows: {check}")
                break
            before = loadavg()
            timings, answers = asyncio.run(
                measure(pg_url, chdb, ch18, days, funnel_id, runs, progress)
            )
            load_average[target] = [before, loadavg()]
            results[target] = timings
            summaries[target] = {}
            for name, by_store in answers.items():
                if by_store.get("PostgreSQL") != by_store.get("chdb"):
                    mismatches.append(f"{name} at {target:,} rows")
                    progress(f"MISMATCH {name}: {by_store}")
                summaries[target][name] = _summary(name, by_store["PostgreSQL"])
            funnel = answers["funnel"]["PostgreSQL"]
            counts[target] = {
                "breakdown_rows": len(answers["breakdown"]["PostgreSQL"]),
                "funnel_visitors": [
                    funnel["all_visitors"],
                    *(s["visitors"] for s in funnel["steps"]),
                ],
                "timeseries_days": len(answers["timeseries"]["PostgreSQL"]),
            }
            progress(f"answers identical: {not mismatches}; {summaries[target]}")
        disk = _disk(pg_url, chdb)
        explain = _explain_breakdown(pg_url, days)
    finally:
        chdb.close()
        ch18.close()
        stack.drop_postgres_db(db)
        stack.drop_clickhouse_db(db)

    data = {
        "size": size,
        "steps": steps,
        "runs": runs,
        "site": SITE,
        "span_days": SPAN // 86_400,
        "date_range": days,
        "queries": QUERIES,
        "loads": loads,
        "checksums": sums,
        "results": results,
        "answers": summaries,
        "answer_counts": counts,
        "disk": disk,
        "postgres_breakdown_plan": explain,
        "load_average": load_average,
        "cpus": os.cpu_count(),
        "default_timeout_s": DEFAULT_TIMEOUT,
        "mismatches": mismatches,
        "command": f"python -m bench query --rows {','.join(str(s) for s in steps)}",
    }
    largest = steps[-1]
    figures: dict[str, Any] = {"query_rows": largest}
    for name in QUERIES:
        for label, key in (("PostgreSQL", "pg"), ("chdb", "chdb")):
            cell = results.get(largest, {}).get(name, {}).get(label, {})
            figures[f"{key}_{name}_ms"] = (
                round(cell["median_ms"], 1) if "median_ms" in cell else "–"
            )
    figures["ch18"] = (
        "n/a"
        if all(
            "unsupported" in results.get(largest, {}).get(q, {}).get("ClickHouse 18.16", {})
            for q in QUERIES
        )
        else "answered"
    )
    figures["mismatches"] = len(mismatches)
    published = out.publish("query", data, figures)
    if mismatches:
        raise AssertionError(f"the stores disagree: {mismatches}")
    return published


async def _with_pool(url: str, work: Callable[[AsyncConnectionPool], Awaitable[int]]) -> int:
    async with AsyncConnectionPool(url, min_size=1, max_size=1, kwargs={"autocommit": True}) as p:
        return await work(p)


def _breakdown_request(days: list[str]) -> QueryRequest:
    return QueryRequest(
        site_id=SITE,
        date_range=days,
        metrics=["visitors", "visits", "pageviews", "bounce_rate"],
        dimensions=["visit:source"],
        filters=[["contains", "event:page", ["/blog"]]],
    )


def _explain_breakdown(pg_url: str, days: list[str]) -> list[str]:
    """PostgreSQL's plan of the breakdown statement, exactly as the query API builds it."""
    statement = build(plan(_breakdown_request(days), datetime.now(UTC)), DIALECT, {})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute(
            ("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement.sql).encode(), statement.params
        ).fetchall()
    return [str(r[0]) for r in rows]


def _disk(pg_url: str, chdb: ClickHouse) -> dict[str, int]:
    """Bytes on disk of the footprints: PostgreSQL's partitions and indexes, chdb's parts."""
    out: dict[str, int] = {}
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT sum(pg_table_size(inhrelid)), sum(pg_indexes_size(inhrelid)) "
            "FROM pg_inherits WHERE inhparent = 'user_footprint'::regclass"
        ).fetchone()
        if row:
            out["postgres_table_bytes"], out["postgres_index_bytes"] = int(row[0]), int(row[1])
    rows = chdb.execute(
        "SELECT sum(bytes_on_disk), count() FROM system.parts WHERE active "
        "AND database = currentDatabase() AND table = 'user_footprint'"
    )
    out["chdb_bytes"], out["chdb_parts"] = int(rows[0][0] or 0), int(rows[0][1])
    return out
