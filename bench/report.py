"""BENCHMARKS.md and the charts, rebuilt from ``results/*.json`` after every run.

Sections come from whichever benchmarks have results, so running one benchmark refreshes its
section and keeps the others. Everything written by hand lives in ``bench/notes/KEY.md`` and is
copied in as is: ``top`` after the introduction, ``worker``, ``api``, ``stores``, ``live``,
``notify``, ``brokers`` (section 6), ``peers`` (7), ``query`` (8) and ``scale`` (9) at the end of
their section, ``analysis`` at the very end; a missing file inserts nothing. Edit the notes, never
BENCHMARKS.md: ``python -m bench --report-only`` rebuilds it, and a unit test checks that the
committed file is what it writes. A note is prose about one run's figures: say which run (its
date), and re-read it after a new run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from bench.charts import chart_paths, draw
from bench.common import Output, measured_at
from bench.query_report import render as render_query
from bench.scale_report import render as render_scale

__all__ = ["write_report"]


def _n(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return f"{value:,.0f}"


def _ms(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _yes(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _rel(path: Path, out: Output) -> str:
    """A link relative to the report, so the same files give the same text wherever it is."""
    return Path(os.path.relpath(path, out.report.parent)).as_posix()


def _profile(p: dict[str, Any], out: Output) -> str:
    # Results keep the absolute path the run wrote (often a temporary directory): link the
    # file of that name under this output's profiles/, where the benchmarks write it.
    return _rel(out.profiles / Path(p["file"]).name, out)


def _note(out: Output, key: str) -> list[str]:
    """The hand-written note ``bench/notes/KEY.md`` as report lines, or nothing."""
    path = out.notes / f"{key}.md"
    text = path.read_text().strip() if path.exists() else ""
    return ["", text] if text else []


# --------------------------------------------------------------------------- sections


CONNECTIONS_NOTE = "32 connections, the server's core saturated"


def _goals(results: dict[str, dict[str, Any]]) -> str:
    rows: list[list[str]] = []
    w = results.get("worker")
    if w:
        rows.append(
            [
                "Worker ≥ 0.20 × raw aiokafka consumer",
                f"{w['ratio']:.3f} ({_n(w['worker']['events_per_s'])} vs "
                f"{_n(w['raw']['events_per_s'])} footprints/s)",
                _yes(w["ratio"] >= 0.20),
            ]
        )
    a = results.get("api")
    if a:
        goal = a.get("goal_ratio", 0.95)
        rows.append(
            [
                f"API with middleware ≥ {goal} × without (trivial handler)",
                f"{a['ratio']:.3f} ({_n(a['tracked_rps'])} vs {_n(a['plain_rps'])} req/s); "
                f"added p50 {_ms(a['added_p50_ms'], 3)} ms, p99 {_ms(a['added_p99_ms'], 3)} ms",
                _yes(a["ratio"] >= goal),
            ]
        )
        if a.get("process"):
            rows.append(
                [
                    f"API with middleware and a delivery process ≥ {goal} × without (trivial "
                    "handler)",
                    f"{a['process']['ratio']:.3f} ({_n(a['process']['rps'])} vs "
                    f"{_n(a['plain_rps'])} req/s; the delivery process "
                    f"{a['process']['delivery_cpu_percent']} % of a core)",
                    _yes(a["process"]["ratio"] >= goal),
                ]
            )
        io = a.get("io")
        if io:
            rows.append(
                [
                    f"API with middleware ≥ {io['goal_ratio']} × without (handler waiting "
                    f"{io['handler_ms']} ms)",
                    f"{io['ratio']:.3f} ({_n(io['tracked_rps'])} vs {_n(io['plain_rps'])} req/s, "
                    f"{CONNECTIONS_NOTE}); one connection: {io.get('one_connection_ratio', '–')}",
                    _yes(io["ratio"] >= io["goal_ratio"]),
                ]
            )
            if io.get("process"):
                rows.append(
                    [
                        f"API with middleware and a delivery process ≥ {io['goal_ratio']} × "
                        f"without (handler waiting {io['handler_ms']} ms)",
                        f"{io['process']['ratio']:.3f} ({_n(io['process']['rps'])} vs "
                        f"{_n(io['plain_rps'])} req/s, {CONNECTIONS_NOTE})",
                        _yes(io["process"]["ratio"] >= io["goal_ratio"]),
                    ]
                )
        rows.append(
            [
                "0 failed requests with the broker stopped",
                f"{a['failed_broker_down']} failed of "
                f"{_n(sum(r['requests'] for r in a['broker_down'].values()))}",
                _yes(a["failed_broker_down"] == 0),
            ]
        )
    s = results.get("stores")
    if s:
        largest = str(s["steps"][-1])
        rates = {k: v[largest]["rows_per_s"] for k, v in s["loads"].items()}
        rows.append(
            [
                "Store load ≥ 100k rows/s",
                ", ".join(f"{k} {_n(v)}" for k, v in rates.items())
                + f" (step to {int(largest):,})",
                ", ".join(f"{k} {_yes(v >= 100_000)}" for k, v in rates.items()),
            ]
        )
        rows.append(
            [
                "Stores give the same dashboard",
                "identical at every size" if not s["mismatches"] else "; ".join(s["mismatches"]),
                _yes(not s["mismatches"]),
            ]
        )
    live = results.get("live")
    if live:
        rows.append(
            [
                "Live stats p99 < 10 ms",
                f"p99 {_ms(live['p99_ms'], 2)} ms, p50 {_ms(live['p50_ms'], 2)} ms at "
                f"{live['rate']:g} req/s",
                _yes(live["p99_ms"] < 10),
            ]
        )
    n = results.get("notify")
    if n:
        lat, fan = n["latency"], n["fanout"]
        rows.append(
            [
                f"Notifications p99 < 50 ms at 500 events/s (measured at {lat['rate']:g}/s)",
                f"p99 {_ms(lat['p99_ms'], 1)} ms, p50 {_ms(lat['p50_ms'], 1)} ms; "
                f"{lat['delivered']:,} of {lat['sent']:,} delivered",
                _yes(lat["p99_ms"] < 50 and lat["delivered"] == lat["sent"])
                if lat["rate"] >= 500
                else "–",
            ]
        )
        last = max(fan["all_published_s"] or 1e9, fan["last_socket_s"] or 1e9)
        rows.append(
            [
                f"A post to {fan['followers']:,} followers delivered within 2 s",
                f"all {fan['published']:,} published in {_ms(fan['all_published_s'], 3)} s; "
                f"{fan['sockets_delivered']}/{fan['sockets']} sockets, the last at "
                f"{_ms(fan['last_socket_s'], 3)} s",
                _yes(last < 2 and fan["published"] == fan["followers"])
                if fan["followers"] >= 10_000
                else "–",
            ]
        )
    else:
        rows.append(
            ["Notifications p99 < 50 ms at 500 events/s; 10k followers < 2 s", "not run", "–"]
        )
    return _table(["goal", "measured", ""], rows)


def _machine(m: dict[str, Any] | None) -> str:
    if not m:
        return "_(no machine description: run `python -m bench`)_"
    info = m.get("cpu_info", {})
    lines = [
        f"- CPU: {m['cpu']} ({info.get('cpu MHz', '?')} MHz, cache {info.get('cache size', '?')}); "
        f"`nproc` = {m.get('nproc_cmd', m['nproc'])}",
        f"- Memory: {m['memory']}; {m['distro']}, {m['os']}",
        f"- Python {m['python']}; load from {m['wrk']}",
        "- Servers: " + "; ".join(f"{k} {v}" for k, v in m.get("servers", {}).items()),
        "- Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
    ]
    return "\n".join(lines)


def _cpu(r: dict[str, Any]) -> list[str]:
    return [_ms(r.get("cpu_percent"), 0), _ms(r.get("runqueue_wait_percent"), 0)]


def _worker_rows(w: dict[str, Any]) -> list[list[str]]:
    raw, wk = w["raw"], w["worker"]
    rows = []
    for label, r in (("before", raw.get("before", raw)), ("after", raw.get("after"))):
        if r:
            rows.append(
                [
                    f"raw `getmany` + `json.loads` + dict count ({label} the worker)",
                    _n(r["events_per_s"]),
                    _ms(r["seconds"], 2),
                    *_cpu(r),
                    f"first record to last; load average {_ms(r.get('load_average'), 1)}",
                ]
            )
    stored = wk.get("stored", wk["events"])
    checks = (
        f"checks: heartbeat {wk['heartbeat_processed']:,}, ClickHouse {wk['clickhouse_rows']:,}, "
        f"Redis 1 m windows {wk['redis_1m_total']:,}"
    )
    rows.append(
        [
            "**Footprint worker** (`faust -A streams.app worker -l info`)",
            f"**{_n(wk['events_per_s'])}**",
            _ms(wk["seconds"], 1),
            *_cpu(wk),
            f"from the worker ready ({wk.get('startup_s')} s after launch) to {stored:,} rows "
            f"in PostgreSQL; first batch {wk['first_batch_rows']:,} rows, "
            f"{wk.get('first_batch_after_ready_s')} s after ready"
            + (f" (measure capped; {w['events']:,} produced)" if wk.get("capped") else "")
            + f"; mean batch {_ms(wk.get('mean_batch'), 0)} footprints"
            + (f"; peak RSS {wk['peak_rss_mb']:,} MB" if "peak_rss_mb" in wk else "")
            + f"; load average {_ms(wk.get('load_average'), 1)}; {checks}",
        ]
    )
    prof = w.get("worker_profiled")
    if prof:
        rows.append(
            [
                "same worker under py-spy",
                _n(prof["events_per_s"]),
                _ms(prof["seconds"], 1),
                *_cpu(prof),
                "sampling overhead included; profiled window only",
            ]
        )
    return rows


def _worker(w: dict[str, Any], charts: dict[str, Path], out: Output) -> str:
    wk = w["worker"]
    parts = [
        f"Command: `{w['command']}`  \n"
        f"{w['events']:,} footprints, {w['links']} links (Zipf-like), {w['partitions']} partitions "
        f"(split {w['produced']['partitions']}), produced through the API's producer "
        f"in {_n(w['produced'].get('messages', 0))} messages (packs of one partition's footprints) "
        f"at {_n(w['produced']['events_per_s'])}/s.",
        "",
        _table(
            ["path", "footprints/s", "seconds", "CPU % of a core", "waiting for a CPU %", "notes"],
            _worker_rows(w),
        ),
        "",
        f"**Ratio worker / raw = {w['ratio']:.4f}** (goal ≥ {w['goal_ratio']}).",
        "",
        f"Per-event cost of each step measured alone in one process (batches of "
        f"{int(w['per_event_costs'].get('_batch_size', {}).get('us_per_event', 0))}; sinks against "
        "the same servers), against the whole worker's "
        f"{1e6 / wk['events_per_s']:,.0f} µs per footprint:",
        "",
        _table(
            ["step", "µs / footprint", "footprints/s alone"],
            [
                [k, _ms(v["us_per_event"], 1), _n(v["events_per_s"])]
                for k, v in w["per_event_costs"].items()
                if not k.startswith("_")
            ],
        ),
    ]
    keys = w["per_event_costs"].get("_table_keys_per_batch")
    if keys:
        per_batch = keys["us_per_event"]
        batch = max(1.0, w["per_event_costs"]["_batch_size"]["us_per_event"])
        parts += [
            "",
            f"Table keys written per batch (each one also a changelog record): {per_batch:,.0f} "
            f"per full batch of {batch:,.0f}, i.e. {per_batch / batch:.2f} per footprint; the "
            f"worker's real batches averaged {_ms(wk.get('mean_batch'), 0)} footprints, and "
            "smaller batches write more keys per footprint.",
        ]
    if "worker" in charts:
        parts += ["", f"![worker]({_rel(charts['worker'], out)})"]
    p = w.get("profile")
    if p:
        parts += [
            "",
            "### Profile of the worker (py-spy)",
            "",
            "`py-spy record --gil --rate 100 --format speedscope` attached to a second worker "
            f"run from its first stored batch, for {p['seconds']} s ({p['samples']:,} samples of "
            "the "
            f"thread holding the GIL, {p['threads']} threads). **The GIL was busy "
            f"{p['gil_busy_percent']}% of the time**: the worker is bound by one Python thread's "
            f"CPU. `Logger.debug` calls (records built, then dropped) are on "
            f"{p['logger_debug_percent']}% of the samples. Flame graph: "
            f"`{_profile(p, out)}` (open at https://www.speedscope.app).",
            "",
            "Where the GIL time goes, by stage (each sample counted once, for the first stage "
            "found on its stack):",
            "",
            _table(
                ["%", "stage"],
                [[_ms(r["percent"]), r["function"]] for r in p.get("stages", [])],
            ),
            "",
            "Top 10 functions by self time:",
            "",
            _table(
                ["%", "function", "called from (most often)"],
                [
                    [
                        _ms(r["percent"]),
                        f"`{r['function']}`",
                        f"{r['called_from']} ({r['called_from_percent']}%)",
                    ]
                    for r in p["top_self"]
                ],
            ),
            "",
            "Self time by package, and this repository's functions by inclusive time:",
            "",
            _table(
                ["%", "package (self time)"],
                [[_ms(r["percent"]), r["function"]] for r in p["by_package"]],
            ),
            "",
            _table(
                ["%", "function (inclusive)"],
                [[_ms(r["percent"]), f"`{r['function']}`"] for r in p["project_inclusive"]],
            ),
        ]
    parts += ["", f"Closing line: `{w['result']}`"]
    return "\n".join(parts)


_SERVER_CPU_HEADER = ["server CPU %", "server waiting for a CPU %"]


def _server_cpu(r: dict[str, Any]) -> list[str]:
    return [_ms(r.get("server_cpu_percent"), 0), _ms(r.get("server_runqueue_wait_percent"), 0)]


def _per_cpu(a: dict[str, Any]) -> str:
    if a.get("cpu_ratio") is None:
        return "."
    return (
        f"; per CPU-second of the server (what the app costs, whatever share of the machine it "
        f"got): {a['cpu_ratio']:.4f}."
    )


def _api_process(a: dict[str, Any], io: dict[str, Any] | None) -> list[str]:
    """The ratios of the middleware with a delivery process, where the run measured it."""
    lines = []
    for case, d in (("trivial handler", a), ("handlers waiting 2 ms", io or {})):
        p = d.get("process")
        if not p:
            continue
        cpu = (
            f"; the delivery process used {p['delivery_cpu_percent']} % of a core"
            if p.get("delivery_cpu_percent") is not None
            else ""
        )
        per_cpu = (
            f"; per CPU-second of the server and its delivery process: {p['cpu_ratio']:.4f}"
            if p.get("cpu_ratio") is not None
            else ""
        )
        lines.append(
            f"**Ratio with a delivery process / without = {p['ratio']:.4f}** ({case}; goal ≥ "
            f"{d['goal_ratio']}); {_n(p['rps'])} vs {_n(d['plain_rps'])} req/s{cpu}{per_cpu}."
        )
    return ["", "  \n".join(lines)] if lines else []


def _api(a: dict[str, Any], charts: dict[str, Path], out: Output) -> str:
    rows = []
    cases = [("", a["runs"])]
    io = a.get("io")
    if io:
        cases.append((f", handler waiting {io['handler_ms']} ms", io["runs"]))
    labels = {
        "plain": "without",
        "tracked": "with middleware",
        "process": "with middleware, delivery process",
    }
    for case, runs in cases:
        rows += [
            [
                labels[name] + case,
                str(i + 1),
                _n(r["rps"]),
                _ms(r["p50_ms"], 2),
                _ms(r["p99_ms"], 2),
                str(r["failed"]),
                *_server_cpu(r),
            ]
            for name in labels
            for i, r in enumerate(runs.get(name, []))
        ]
    for name, r in a["broker_down"].items():
        rows.append(
            [
                f"with middleware, {name}",
                "1",
                _n(r["rps"]),
                _ms(r["p50_ms"], 2),
                _ms(r["p99_ms"], 2),
                str(r["failed"]),
                *_server_cpu(r),
            ]
        )
    lat = a["latency_1_connection"]
    down = a["broker_down"]
    parts = [
        f"Command: `{a['command']}`  \n"
        f"Load: {a['tool']}, closed loop, {a['connections']} connections, "
        f"{a['duration_s']:g} s per "
        f"run after {a['warmup_s']:g} s warm-up; runs in the order without, with, "
        + (
            "with a delivery process (`FOOTPRINT_DELIVERY_PROCESS=true`) twice, with, without."
            if "process" in a
            else "with, without."
        ),
        "",
        _table(["app", "run", "req/s", "p50 ms", "p99 ms", "failed", *_SERVER_CPU_HEADER], rows),
        "",
        f"**Ratio with / without = {a['ratio']:.4f}** (trivial handler; goal ≥ "
        f"{a['goal_ratio']}); {_n(a['tracked_rps'])} vs {_n(a['plain_rps'])} req/s"
        + _per_cpu(a)
        + (
            f"  \n**Ratio with / without = {io['ratio']:.4f}** (handlers waiting "
            f"{io['handler_ms']} ms, `await asyncio.sleep(0.002)` as a host app's I/O would; goal "
            f"≥ {io['goal_ratio']}); {_n(io['tracked_rps'])} vs {_n(io['plain_rps'])} req/s"
            + _per_cpu(io)
            if io
            else ""
        ),
        *_api_process(a, io),
        "",
        "Latency on one connection (no queueing):",
        "",
        _table(
            ["app", "p50 ms", "p90 ms", "p99 ms", "req/s"],
            [
                [k, _ms(v["p50_ms"], 3), _ms(v["p90_ms"], 3), _ms(v["p99_ms"], 3), _n(v["rps"])]
                for k, v in (
                    ("without", lat["plain"]),
                    ("with middleware", lat["tracked"]),
                    ("without, handler waiting 2 ms", lat.get("plain-io")),
                    ("with middleware, handler waiting 2 ms", lat.get("tracked-io")),
                )
                if v
            ],
        ),
        "",
        f"Added by the middleware: **p50 {_ms(a['added_p50_ms'], 3)} ms, p99 "
        f"{_ms(a['added_p99_ms'], 3)} ms**"
        + (
            f"; with the 2 ms handler on one connection the app serves "
            f"**{io['one_connection_ratio']:.4f}×** the requests it serves without."
            if io and io.get("one_connection_ratio")
            else "."
        ),
        *_api_in_process(a.get("in_process")),
        "",
        f"Delivery with the broker up: {a['broker_up']['recorded']:,} footprints on the topic for "
        f"{a['broker_up']['served']:,} responses counted by the load generator (it does not count "
        "requests still in flight when a run ends, the server does).  \n"
        f"Broker down: **{a['failed_broker_down']} failed requests**; after shutdown the spool "
        "held "
        + "; ".join(
            f"{r['kept_in_spool_after_shutdown']:,} footprints for {r['served_total']:,} counted "
            f"requests ({name})"
            for name, r in down.items()
        )
        + ".",
    ]
    p = a.get("profile")
    if p:
        parts += [
            "",
            "### Profile of the app with the middleware (py-spy)",
            "",
            f"`py-spy record --gil` on the tracked uvicorn process during one more "
            f"{a['duration_s']:g} s run at {a['connections']} connections "
            f"({_n(p['rps_under_profiler'])} req/s under the profiler; {p['samples']:,} samples, "
            f"GIL busy {p['gil_busy_percent']}%). Flame graph: `{_profile(p, out)}`.",
            "",
            *_profile_tables(p),
        ]
    if "api" in charts:
        parts += ["", f"![api]({_rel(charts['api'], out)})"]
    parts += ["", f"Closing line: `{a['result']}`"]
    return "\n".join(parts)


_DISK_LABELS = {
    "postgres_table_bytes": "PostgreSQL table",
    "postgres_index_bytes": "PostgreSQL indexes",
    "chdb_bytes": "chdb user_footprint",
    "clickhouse-18.16_bytes": "ClickHouse 18.16 user_footprint",
}


def _stores(s: dict[str, Any], charts: dict[str, Path], out: Output) -> str:
    steps = [str(x) for x in s["steps"]]
    load_rows = []
    for name, by_size in s["loads"].items():
        load_rows.append([name] + [_n(by_size[k]["rows_per_s"]) for k in steps])
    load_rows.append(
        ["PostgreSQL `VACUUM ANALYZE` after the step (s)"]
        + [_ms(s["postgres_vacuum_analyze_s"][k], 1) for k in steps]
    )
    query_rows = []
    for name, by_size in s["queries"].items():
        query_rows.append(
            [name] + [_ms(by_size[k]["median_ms"], 1) if k in by_size else "–" for k in steps]
        )
    largest = steps[-1]
    stmt_rows = []
    for name, by_size in s["queries"].items():
        st = by_size.get(largest, {}).get("statements_ms", {})
        stmt_rows.append([name] + [_ms(st.get(k), 1) for k in ("totals", "top pages", "buckets")])
    disk = s.get("disk", {})
    parts = [
        f"Command: `{s['command']}`  \n"
        f"Rows spread over {s['span_days']:g} days; dashboard period = the last 24 h "
        f"({s['period']['aligned'][0]} to {s['period']['aligned'][1]}), i.e. about 1/7 of the rows "
        "(2/7 for the totals with the previous period). Same rows in every store (checked: "
        + (
            "identical answers at every size"
            if not s["mismatches"]
            else f"MISMATCH {s['mismatches']}"
        )
        + ").",
        "",
        "Load rate, rows/s, for each step (PostgreSQL: `COPY … FROM STDIN` text, indexes in "
        "place; ClickHouse: `INSERT INTO user_footprint SELECT … FROM numbers()`, the per-minute "
        "materialized view included):",
        "",
        _table(["store"] + [f"to {int(k):,}" for k in steps], load_rows),
        "",
        "Dashboard (`api.summary.summarize`: totals + previous period, top 10, 15-minute buckets), "
        "median of 5 runs after a warm-up, ms:",
        "",
        _table(["store"] + [f"{int(k):,} rows" for k in steps], query_rows),
        "",
        f"Per statement at {int(largest):,} rows (median ms):",
        "",
        _table(["store", "totals", "top pages", "buckets"], stmt_rows),
        "",
        "Disk at the largest size: "
        + ", ".join(f"{_DISK_LABELS.get(k, k)} {v / 1e6:,.0f} MB" for k, v in disk.items())
        + ".",
    ]
    what_if = s.get("postgres_what_if")
    if what_if:
        parts += [
            "",
            f"What limits PostgreSQL's load rate: `COPY` of {what_if['rows']:,} rows into an empty "
            "table (same rows, same session):",
            "",
            _table(
                ["table", "rows/s"],
                [[k, _n(v)] for k, v in what_if["rows_per_s"].items()],
            ),
        ]
    plan = s.get("postgres_breakdown", {}).get("top_pages_plan")
    if plan:
        parts += [
            "",
            f"<details><summary>PostgreSQL plan of the top-pages statement at {int(largest):,} rows"
            "</summary>\n\n```\n" + "\n".join(plan) + "\n```\n</details>",
        ]
    if "stores" in charts:
        parts += ["", f"![stores]({_rel(charts['stores'], out)})"]
    parts += ["", f"Closing line: `{s['result']}`"]
    return "\n".join(parts)


def _profile_tables(p: dict[str, Any]) -> list[str]:
    return [
        _table(
            ["%", "function (self)", "called from (most often)"],
            [[_ms(r["percent"]), f"`{r['function']}`", r["called_from"]] for r in p["top_self"]],
        ),
        "",
        _table(
            ["%", "package (self)"],
            [[_ms(r["percent"]), r["function"]] for r in p["by_package"][:8]],
        ),
        "",
        _table(
            ["%", "this repository's functions (inclusive)"],
            [[_ms(r["percent"]), f"`{r['function']}`"] for r in p["project_inclusive"]],
        ),
    ]


def _live(live: dict[str, Any], out: Output) -> str:
    rows = [
        [
            name,
            _n(r["rps"]),
            _ms(r["p50_ms"], 2),
            _ms(r["p90_ms"], 2),
            _ms(r["p99_ms"], 2),
            _ms(r["max_ms"], 1),
            str(r["failed"]),
            *_server_cpu(r),
            r["tool"],
        ]
        for name, r in live["loads"].items()
    ]
    sample = live["sample"]
    return "\n".join(
        [
            f"Command: `{live['command']}`  \n"
            f"`GET {live['path']}` against `uvicorn api.main:app` (one process) with the whole "
            "stack behind it; Redis filled through the worker's Redis sink (200 links, "
            "4 partitions, 2,000 visitors per window; the answer had total "
            f"{sample['total']:,} and {len(sample['top_pages'])} top pages). "
            f"{live['duration_s']:g} s per load.",
            "",
            _table(
                [
                    "load",
                    "req/s",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "max ms",
                    "failed",
                    *_SERVER_CPU_HEADER,
                    "tool",
                ],
                rows,
            ),
            "",
            f"**p99 {_ms(live['p99_ms'], 2)} ms at {live['rate']:g} req/s** (median of the "
            "open-loop runs' p99, from the moment each request was written; counted from the "
            "moment each was due, which adds the load generator's own scheduling delays on this "
            "shared machine: p99 "
            + ", ".join(
                _ms(r.get("due_p99_ms"), 2)
                for name, r in live["loads"].items()
                if name.startswith("open loop")
            )
            + " ms) — "
            f"goal < {live['goal_p99_ms']:g} ms.",
            "",
            *(
                [
                    "",
                    "### Profile of the API answering it (py-spy)",
                    "",
                    "`py-spy record --gil` on the API process during one more "
                    f"{live['duration_s']:g} s run on one connection "
                    f"({_n(live['profile']['rps_under_profiler'])} req/s under the profiler; "
                    f"GIL busy {live['profile']['gil_busy_percent']}%). Flame "
                    f"graph: `{_profile(live['profile'], out)}`.",
                    "",
                    *_profile_tables(live["profile"]),
                ]
                if live.get("profile")
                else []
            ),
            "",
            f"Closing line: `{live['result']}`",
        ]
    )


_HOPS = {
    "acked": "until the broker acknowledged the publish",
    "on_redis": "until the worker published the delivery on Redis",
    "redis_to_socket": "from Redis to the WebSocket (the API's hop)",
}


def _api_in_process(ip: dict[str, Any] | None) -> list[str]:
    """The middleware's added work per request, measured in the benchmark's own process."""
    if not ip:
        return []
    return [
        "",
        f"Measured in one process, without server or network (`bench/api_inprocess.py`: the "
        f"same two sites called as uvicorn calls them, {ip['rounds']} alternating rounds of "
        f"{ip['requests_per_round']:,} requests, each tracked round ending when the broker has "
        f"every footprint): **{_ms(ip['plain_us'], 1)} µs of CPU a request without the "
        f"middleware, {_ms(ip['tracked_us'], 1)} µs with it (+{_ms(ip['added_us'], 1)} µs; "
        f"ratio {ip['ratio']:.3f})**"
        + (
            f"; with a delivery process, **{_ms(ip['process_us'], 1)} µs in the API process "
            f"(+{_ms(ip['process_added_us'], 1)} µs; ratio {ip['process_ratio']:.3f})** and "
            f"{_ms(ip['process_child_us'], 1)} µs in its child"
            if "process_us" in ip
            else ""
        )
        + ". uvicorn's own work per request (HTTP parsing, the socket write) comes on top of "
        "each and is the same with and without.",
    ]


def _notify_hops(lat: dict[str, Any]) -> list[list[str]]:
    """Where the latency goes, hop by hop (runs that recorded it)."""
    hops = lat.get("hops") or {}
    return [
        [
            f"p50 / p99 {label}",
            f"{_ms(hops[name]['p50_ms'], 1)} / {_ms(hops[name]['p99_ms'], 1)} ms",
        ]
        for name, label in _HOPS.items()
        if name in hops
    ]


def _notify_batching(b: dict[str, Any] | None) -> list[str]:
    """The agent's batching policies alone, in one process (runs that measured them)."""
    if not b:
        return []
    rows = [
        [
            p["label"],
            f"{_ms(p['p50_ms'], 1)} / {_ms(p['p99_ms'], 1)} ms",
            f"{p['passes_per_s']:.0f}",
            f"{p['events_per_pass']:.1f}",
            f"{p['idle_cpu_percent']:.2f}",
        ]
        for p in b["policies"].values()
    ]
    return [
        "",
        f"**The batching policy alone** (`bench/batching.py`, in the benchmark's process after "
        f"the servers stop): {b['rate']:g} events/s open loop (Poisson, the same arrivals for "
        f"each) for {b['loaded_seconds']:g} s into a Faust agent whose pass waits "
        f"{b['pass_ms']:g} ms (the worker's pass here); latency from arrival to the end of "
        f"the event's pass; then the CPU of the idle agent over {b['idle_seconds']:g} s.",
        "",
        _table(
            ["policy", "p50 / p99", "passes/s", "events/pass", "idle CPU % of a core"],
            rows,
        ),
    ]


def _notify(n: dict[str, Any]) -> str:
    lat, fan = n["latency"], n["fanout"]
    return "\n".join(
        [
            f"Command: `{n['command']}`  ",
            "The worker (`faust -A streams.app worker -l info`) and the API (`uvicorn "
            "api.main:app`) on the shared stack; the load from the benchmark's process. "
            f"**Latency**: {lat['recipients']} users each hold a WebSocket on `/ws`; "
            f"`follow_user` events, one recipient each, published with "
            "`api.notify.NotificationPublisher` (what the community API calls) open loop at "
            f"{lat['rate']:g}/s for {lat['seconds']:g} s"
            + (
                f" (after {lat['warmup_seconds']:g} s at the same rate, not counted)"
                if lat.get("warmup_seconds")
                else ""
            )
            + "; latency from just before `publish` to "
            "the WebSocket message carrying that event. **Fan-out**: one post by an author with "
            f"{fan['followers']:,} followers; time until every follower's notification was "
            f"published on Redis (a subscriber counts them) and until each of {fan['sockets']} "
            "followers holding a WebSocket had it.",
            "",
            _table(
                ["measure", "value"],
                [
                    ["events sent / delivered", f"{lat['sent']:,} / {lat['delivered']:,}"],
                    ["achieved publish rate", f"{lat['achieved_rate']:g}/s"],
                    [
                        "latency p50 / p90 / p99 / max",
                        f"{_ms(lat['p50_ms'], 1)} / {_ms(lat['p90_ms'], 1)} / "
                        f"{_ms(lat['p99_ms'], 1)} / {_ms(lat['max_ms'], 1)} ms",
                    ],
                    *_notify_hops(lat),
                    [
                        "fan-out: published on Redis",
                        f"{fan['published']:,} of {fan['followers']:,}, the last after "
                        f"{_ms(fan['all_published_s'], 3)} s",
                    ],
                    [
                        "fan-out: WebSockets",
                        f"{fan['sockets_delivered']} of {fan['sockets']}, first "
                        f"{_ms(fan['first_socket_s'], 3)} s, last {_ms(fan['last_socket_s'], 3)} s",
                    ],
                ],
            ),
            *_notify_batching(n.get("batching")),
            "",
            f"Closing line: `{n['result']}`",
        ]
    )


def _brokers(out: Output) -> str:
    """Worker throughput and notification latency on Tansu and on Apache Kafka, side by side."""
    rows = []
    for broker, suffix in (
        ("Tansu 0.6 (memory)", ""),
        ("Apache Kafka 4.1 (KRaft, 1 node)", ".kafka"),
    ):
        w = out.load(f"worker{suffix}")
        n = out.load(f"notify{suffix}")
        if w is None and n is None:
            continue
        worker = (
            f"{w['worker']['events_per_s']:,} / {w['raw']['events_per_s']:,} = **{w['ratio']:.3f}**"
            if w
            else "–"
        )
        lat = n["latency"] if n else None
        notify = (
            f"{_ms(lat['p50_ms'], 1)} / {_ms(lat['p99_ms'], 1)} ms at {lat['rate']:.0f}/s"
            if lat
            else "–"
        )
        fan = f"{_ms(n['fanout']['last_socket_s'], 3)} s" if n else "–"
        eo = w.get("worker_exactly_once") if w else None
        exactly_once = (
            f"{eo['events_per_s']:,}/s = {eo['events_per_s'] / w['worker']['events_per_s']:.2f}× "
            f"(stored {eo['stored']:,}, ClickHouse {eo['clickhouse_rows']:,}, "
            f"Redis 1m total {eo['redis_1m_total']:,})"
            if eo and w
            else "–"
        )
        commands = ", ".join(f"`{d['command']}`" for d in (w, n) if d)
        rows.append([broker, worker, exactly_once, notify, fan, commands])
    if not rows:
        return "_not run yet: `python -m bench worker notify --broker kafka`_"
    return _table(
        [
            "broker",
            "worker / raw consumer (footprints/s)",
            "worker with exactly_once",
            "notification p50 / p99",
            "10k fan-out, last socket",
            "commands",
        ],
        rows,
    )


def _peer_row(
    label: str, r: dict[str, Any], worker: float | None, goal: str, notes: str
) -> list[str]:
    rate = r["events_per_s"]
    return [
        label,
        _n(rate),
        _ms(r.get("seconds"), 2),
        *_cpu(r),
        f"{worker / rate:.3f}" if worker else "–",
        goal,
        notes,
    ]


def _peers_table(p: dict[str, Any]) -> str:
    raw, ref, quix, wk = p["raw"], p["reference"], p["quix"], p["worker"]
    goals = p["goals"]
    w = wk["events_per_s"]
    rows = []
    for label, r in (("before", raw["before"]), ("after", raw["after"])):
        rows.append(
            _peer_row(
                f"raw aiokafka `getmany` + `json.loads` + dict count ({label} the others)",
                r,
                None,
                "",
                f"load average {_ms(r.get('load_average'), 1)}",
            )
        )
    rows.append(
        [
            "raw, mean of both (the limit)",
            _n(raw["events_per_s"]),
            "",
            "",
            "",
            f"**{p['ratios']['worker_vs_raw']:.3f}**",
            f"≥ {goals['raw']}",
            "",
        ]
    )
    rows.append(
        _peer_row(
            "reference site: confluent-kafka `poll`, `json.loads`, one `INSERT` and "
            "`commit` per message",
            ref,
            w,
            f"≥ {goals['reference']}",
            f"{ref['stored']:,} rows in PostgreSQL",
        )
    )
    labels = {
        "window_and_sink": "Quix Streams: 1-minute tumbling count per link + `PostgreSQLSink`",
        "window": "Quix Streams: the window only",
        "sink": "Quix Streams: `PostgreSQLSink` only",
    }
    for name, label in labels.items():
        r = quix.get(name)
        if not r:
            continue
        checks = []
        if "windows" in r:
            checks.append(f"{r['windows']:,} windows, total {r['window_total']:,} = N, each equal")
        if "stored" in r:
            checks.append(f"{r['stored']:,} rows in PostgreSQL")
        rows.append(
            _peer_row(
                label,
                r,
                w,
                f"≥ {goals['quix']}" if name == "window_and_sink" else "",
                "; ".join(checks) + f"; {_ms(r.get('with_shutdown_s'), 2)} s with shutdown",
            )
        )
    rows.append(
        _peer_row(
            "**Footprint worker**, one footprint per message",
            wk,
            None,
            "",
            f"from ready to {wk['stored']:,} rows in PostgreSQL"
            + (" (measure capped)" if wk.get("capped") else "")
            + f"; heartbeat {wk['heartbeat_processed']:,}, ClickHouse "
            f"{wk['clickhouse_rows']:,}, Redis 1 m windows {wk['redis_1m_total']:,}",
        )
    )
    intake = p.get("faust_intake")
    if intake:
        rows.append(
            _peer_row(
                "Faust's intake alone: the worker's app, topic and batches, an agent that only "
                "takes them (`bench/intake_app.py`; not in the ratios)",
                intake,
                w,
                "",
                f"from ready to {intake['events']:,} events taken in {intake['batches']:,} "
                f"batches; {_ms(intake.get('from_first_batch_s'), 2)} s from the first batch",
            )
        )
    # Older results ran a larger batch than the default, newer ones a smaller one.
    other = p.get("worker_other_batches") or p.get("worker_larger_batches")
    if other:
        rows.append(
            _peer_row(
                f"Footprint worker, one footprint per message, `FOOTPRINT_BATCH_SIZE="
                f"{other.get('batch_size')}` (not in the ratios)",
                other,
                None,
                "",
                f"{other['stored']:,} rows in PostgreSQL"
                + (" (measure capped)" if other.get("capped") else ""),
            )
        )
    packed = p.get("worker_packs")
    if packed:
        rows.append(
            _peer_row(
                f"Footprint worker on packs ({_n(packed.get('messages'))} messages, as the API "
                "sends them; not in the ratios)",
                packed,
                None,
                "",
                f"{packed['stored']:,} rows in PostgreSQL"
                + (" (measure capped)" if packed.get("capped") else ""),
            )
        )
    return _table(
        [
            "consumer",
            "footprints/s",
            "seconds",
            "CPU % of a core",
            "waiting for a CPU %",
            "worker ÷ this",
            "goal (issue 13)",
            "checks",
        ],
        rows,
    )


def _peers(out: Output) -> str:
    """The peers benchmark on each broker that has results."""
    parts: list[str] = []
    for broker, suffix in (
        ("Tansu 0.6 (memory)", ""),
        ("Apache Kafka 4.1 (KRaft, 1 node)", ".kafka"),
    ):
        p = out.load(f"peers{suffix}")
        if p is None:
            continue
        v = p["versions"]
        parts += [
            f"### {broker}",
            "",
            f"Command: `{p['command']}`  \n"
            f"{p['events']:,} footprints, {p['links']} links, {p['windows']:,} link-minute "
            f"windows, {p['partitions']} partitions (split {p['produced']['partitions']}); "
            f"quixstreams {v['quixstreams']} (on confluent-kafka {v['quix_confluent-kafka']}, "
            f"librdkafka {v['quix_librdkafka']}, in its own venv); the reference consumer on "
            f"confluent-kafka {v['confluent-kafka']} (librdkafka {v['librdkafka']}); aiokafka "
            f"{v['aiokafka']}.",
            "",
            _peers_table(p),
            "",
            f"Closing line: `{p['result']}`",
            "",
        ]
    if not parts:
        return "_not run yet: `python -m bench peers` and `python -m bench peers --broker kafka`_"
    return "\n".join(parts).rstrip()


def _scale(out: Output) -> str:
    """The scaling benchmark on each broker that has results."""
    parts = [
        render_scale(s, broker)
        for broker, suffix in (
            ("Apache Kafka 4.1 (KRaft, 1 node)", ".kafka"),
            ("Tansu 0.6 (memory)", ""),
        )
        if (s := out.load(f"scale{suffix}")) is not None
    ]
    return "\n\n".join(parts) or "_not run yet: `python -m bench scale --broker kafka`_"


# The results each section shows beyond the others, for the introduction's "measured" list:
# (section, ((label, result name), ...)). Section 6 repeats 1 and 5 for Tansu.
MEASURED = (
    ("1", (("", "worker"),)),
    ("2", (("", "api"),)),
    ("3", (("", "stores"),)),
    ("4", (("", "live"),)),
    ("5", (("", "notify"),)),
    ("6", (("worker on Apache Kafka", "worker.kafka"), ("notify on Apache Kafka", "notify.kafka"))),
    ("7", (("Tansu", "peers"), ("Apache Kafka", "peers.kafka"))),
    ("8", (("", "query"),)),
    ("9", (("Apache Kafka", "scale.kafka"), ("Tansu", "scale"))),
)


def _footprints(steps: list[int]) -> str:
    labels = [f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n:,}" for n in steps]
    return " and ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 1 else labels)


def _measured(out: Output) -> str:
    """When and at which size each section's results were measured, from the result files."""
    entries = []
    for section, sources in MEASURED:
        times, sizes = [], []
        for label, name in sources:
            data = out.load(name)
            if data is None:
                continue
            when = measured_at(data, out.results / f"{name}.json")
            times.append(f"{label} {when:%Y-%m-%d %H:%M}".strip())
            # The query benchmark's sizes are given in footprints (--rows), not by name.
            size = (
                f"{_footprints(data['steps'])} footprints"
                if name == "query"
                else f"size {data['size']}"
            )
            if size not in sizes:
                sizes.append(size)
        if times:
            entries.append(f"{section}: {', '.join(times + sizes)}")
    return "; ".join(entries) or "–"


def write_report(out: Output, *, draw_charts: bool = True) -> Path:
    """Rebuild BENCHMARKS.md, with the notes, and the charts from the saved results.

    ``draw_charts=False`` links the charts where ``draw`` puts them without drawing them.
    """
    results = {
        name: data
        for name in ("worker", "api", "live", "notify", "stores", "peers", "query")
        if (data := out.load(name)) is not None
    }
    charts = draw(out, results) if draw_charts else chart_paths(out, results)
    no_charts = bool(results) and not charts
    machine = out.load("machine")
    parts = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench` (`make bench`) from each benchmark's latest saved "
        f"results, measured (UTC) in section {_measured(out)}. "
        "The machine is shared and noisy: each benchmark compares two things **within one run** "
        "(a ratio), and absolute figures move from run to run. Every benchmark runs at a tiny "
        "size in seconds: `python -m bench --size tiny` (report in a temporary directory).",
        *_note(out, "top"),
        "",
        *(["_(No charts: matplotlib is not installed.)_", ""] if no_charts else []),
        "## Goals (issue 5)",
        "",
        _goals(results),
        "",
        "## Machine",
        "",
        _machine(machine),
    ]
    sections = (
        ("worker", "1. Worker throughput", lambda r: _worker(r, charts, out)),
        ("api", "2. API: capture middleware overhead", lambda r: _api(r, charts, out)),
        ("stores", "3. Stores: PostgreSQL vs ClickHouse", lambda r: _stores(r, charts, out)),
        ("live", "4. Live stats latency", lambda r: _live(r, out)),
        ("notify", "5. Notifications: latency and fan-out", _notify),
    )
    for name, title, render in sections:
        parts += ["", f"## {title}", ""]
        parts.append(
            render(results[name]) if name in results else f"_not run yet: `python -m bench {name}`_"
        )
        parts += _note(out, name)
    parts += [
        "",
        "## 6. Brokers side by side: Tansu and Apache Kafka",
        "",
        "The sections above run on Tansu. The same benchmarks on Apache Kafka "
        "(`--broker kafka`), each ratio measured within its own run:",
        "",
        _brokers(out),
        *_note(out, "brokers"),
        "",
        "## 7. Peers in the same run: raw consumer, reference consumer, Quix Streams, worker",
        "",
        "The same topic of footprints, **one per message** (the reference site's shape, no "
        "packs), keyed by link, read by each consumer in its own group from the earliest offset "
        "and timed from its first record to its last stored (PostgreSQL with fsync off) or, "
        "for the raw consumer and Quix's window only, processed. The Footprint worker is timed "
        "from ready (a few hundred ms before its first record) to N rows in PostgreSQL, and "
        "also writes ClickHouse and Redis; Quix Streams runs its defaults (RocksDB state with a "
        "changelog topic, checkpoint every 5 s) and emits every window update (`.current()`), "
        "which the benchmark checks against a count of the produced footprints. "
        "\"worker ÷ this\" is the worker's rate over that consumer's.",
        "",
        _peers(out),
        *_note(out, "peers"),
        "",
        "## 8. Stats API v2 at scale: a breakdown, a funnel and a timeseries on both stores",
        "",
        render_query(results["query"])
        if "query" in results
        else "_not run yet: `python -m bench query --rows 1000000,10000000`_",
        *_note(out, "query"),
        "",
        "## 9. Workers side by side: 1, 2 and 4 worker processes in one consumer group",
        "",
        _scale(out),
        *_note(out, "scale"),
        *_note(out, "analysis"),
    ]
    out.report.parent.mkdir(parents=True, exist_ok=True)
    out.report.write_text("\n".join(parts) + "\n")
    return out.report
