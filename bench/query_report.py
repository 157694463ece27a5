"""The query benchmark's section of BENCHMARKS.md (``bench/query.py``'s results)."""

from __future__ import annotations

from typing import Any

__all__ = ["render"]

_LABELS = {
    "breakdown": "breakdown with a filter",
    "funnel": "funnel, 3 steps",
    "timeseries": "30-day timeseries",
}


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _cell(cell: dict[str, Any], limit_ms: float) -> str:
    if "unsupported" in cell:
        return "n/a"
    if "median_ms" not in cell:
        return "–"
    flag = " †" if cell["median_ms"] > limit_ms else ""
    return f"**{cell['median_ms']:,.0f}** ({cell['min_ms']:,.0f}){flag}"


def _ratio(by_store: dict[str, Any]) -> str:
    pg, ch = by_store.get("PostgreSQL", {}), by_store.get("chdb", {})
    if "median_ms" not in pg or "median_ms" not in ch or not ch["median_ms"]:
        return "–"
    return f"{pg['median_ms'] / ch['median_ms']:.1f}×"


def render(q: dict[str, Any]) -> str:
    """The section's text: data set, checks, the table of times, loads, disk, closing line."""
    steps = [str(s) for s in q["steps"]]
    limit_ms = q["default_timeout_s"] * 1000
    rows = []
    reasons: set[str] = set()
    for name in q["queries"]:
        for step in steps:
            by_store = q["results"].get(step, {}).get(name, {})
            ch18 = by_store.get("ClickHouse 18.16", {})
            if "unsupported" in ch18:
                reasons.add(ch18["unsupported"])
            rows.append(
                [
                    _LABELS.get(name, name),
                    f"{int(step):,}",
                    _cell(by_store.get("PostgreSQL", {}), limit_ms),
                    _cell(by_store.get("chdb", {}), limit_ms),
                    _ratio(by_store),
                    _cell(ch18, limit_ms),
                    q["answers"].get(step, {}).get(name, "–"),
                ]
            )
    load_rows = [
        [
            f"to {int(step):,}",
            f"{load['postgres_s']:,.1f} (+ {load['postgres_vacuum_s']:,.1f})",
            f"{load['chdb_s']:,.1f} (+ {load.get('chdb_merges_s', 0):,.1f})",
            "equal" if q["checksums"][step]["equal"] else "**differ**",
        ]
        for step, load in q["loads"].items()
    ]
    disk = q.get("disk", {})
    checked = (
        "identical answers from both stores at every size"
        if not q["mismatches"]
        else f"MISMATCH {q['mismatches']}"
    )
    parts = [
        f"Command: `{q['command']}`  ",
        f"{int(steps[-1]):,} footprints at most, generated inside each store by the same SQL "
        f"(`bench/dataset.py`): 3 sites (60/30/10%), {q['span_days']} days, visits of 1–9 "
        "footprints, a fifth of them by returning visitors, ~3.3k pages per site, referrers, "
        "newsletter UTM tags, 9 browser/OS/device kinds (5% bots), Signup and outbound-click "
        "events with props. "
        f"Questions on `{q['site']}` over the 30 days ending today ({q['date_range'][0]} to "
        f"{q['date_range'][1]}, i.e. a third of its rows), through the API's own code "
        "(`api.query.plan` + `api.query.run`, `api.funnels.funnel_report` on a funnel stored "
        f"by `api.goals.GoalStore`); {checked}. Median (min) of {q['runs']} runs after a "
        "warm-up, ms; PostgreSQL is the migrated table (partitioned by month, `VACUUM ANALYZE` "
        "after the load), ClickHouse is chdb in-process, both on the embedded stack's settings.",
        "",
        _table(
            [
                "question",
                "footprints",
                "PostgreSQL",
                "ClickHouse (chdb)",
                "PostgreSQL ÷ chdb",
                "ClickHouse 18.16",
                "answer (the same from both)",
            ],
            rows,
        ),
        "",
        *(f"- {_LABELS.get(k, k)}: {v}" for k, v in q["queries"].items()),
        "- funnel: the visitors of the range, then those whose visits complete the steps in order.",
    ]
    if any("†" in cell for row in rows for cell in row):
        parts.append(
            f"- † slower than `FOOTPRINT_QUERY_TIMEOUT`'s default ({q['default_timeout_s']:g} s): "
            "the API would stop the query and answer 504 (the benchmark waits for the answer)."
        )
    for reason in sorted(reasons):
        parts.append(f"- ClickHouse 18.16 is n/a: the query API answers 501 there ({reason}).")
    parts += [
        "",
        "Generating the rows (seconds; PostgreSQL `INSERT … SELECT … FROM generate_series()` "
        "into the indexed, partitioned table, plus `VACUUM ANALYZE`; chdb `INSERT … SELECT … "
        "FROM numbers()`, plus the wait for the background merges it started), and the "
        "checksums compared before any timing (per site: rows, sum of times, distinct "
        "visitors, pages and ids, text lengths, bots, status codes, props):",
        "",
        _table(["step", "PostgreSQL", "chdb", "checksums"], load_rows),
        "",
        f"Disk at {int(steps[-1]):,}: PostgreSQL table "
        f"{disk.get('postgres_table_bytes', 0) / 1e6:,.0f} MB + indexes "
        f"{disk.get('postgres_index_bytes', 0) / 1e6:,.0f} MB; chdb "
        f"{disk.get('chdb_bytes', 0) / 1e6:,.0f} MB in {disk.get('chdb_parts', 0)} parts.",
    ]
    loads = [v for pair in q.get("load_average", {}).values() for v in pair if v is not None]
    if loads:
        parts += [
            "",
            f"1-minute load average while timing: {min(loads):.1f} to {max(loads):.1f} on "
            f"{q.get('cpus')} cores. The machine is shared with other engineers' test runs: "
            "a load above the core count means the timings include waiting for a CPU, so "
            "compare the stores within a row (same minutes) rather than across runs.",
        ]
    plan = q.get("postgres_breakdown_plan")
    if plan:
        parts += [
            "",
            f"<details><summary>PostgreSQL plan of the breakdown at {int(steps[-1]):,} footprints"
            "</summary>\n\n```\n" + "\n".join(plan) + "\n```\n</details>",
        ]
    parts += ["", f"Closing line: `{q['result']}`"]
    return "\n".join(parts)
