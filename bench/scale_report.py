"""Section 9 of BENCHMARKS.md: workers side by side, and a model for a bigger machine.

Every figure of the model is computed from the saved runs (``bench/results/scale*.json``):
the one-worker rate, the CPU each process spent per footprint, the busiest partition's share.
"""

from __future__ import annotations

from typing import Any

from bench.common import measured_at

__all__ = ["check", "costs", "model", "ratios", "render"]

# Processes whose CPU a run measures, in the order the report shows them.
PARTS = ("workers", "postgres", "clickhouse", "redis", "kafka", "bench")
LABELS = {
    "workers": "workers",
    "postgres": "PostgreSQL",
    "clickhouse": "ClickHouse",
    "redis": "Redis",
    "kafka": "Kafka",
    "bench": "benchmark",
}
MODEL_CORES = (4, 8, 16)


def ratios(runs: list[dict[str, Any]], key: str = "events_per_s") -> dict[str, dict[str, Any]]:
    """Each run's rate (``key``) over the one-worker rate on the same partition count."""
    one = {r["partitions"]: r[key] for r in runs if r["workers"] == 1}
    out: dict[str, dict[str, float | None]] = {}
    for r in runs:
        base = one.get(r["partitions"])
        out.setdefault(str(r["partitions"]), {})[str(r["workers"])] = (
            round(r[key] / base, 3) if base else None
        )
    return out


def check(runs: list[dict[str, Any]]) -> list[str]:
    """Every store count that is not N, per run: a rate over wrong counts means nothing."""
    problems = []
    for r in runs:
        n = r["events"]
        where = f"{r['partitions']} partitions, {r['workers']} worker(s)"
        for name, key in (
            ("PostgreSQL rows", "stored"),
            ("ClickHouse rows", "clickhouse_rows"),
            ("Redis 1-minute total", "redis_1m_total"),
            ("heartbeats' processed", "heartbeat_processed"),
        ):
            if r.get(key) != n:
                problems.append(f"{where}: {name} {r.get(key)} of {n}")
    return problems


def costs(r: dict[str, Any]) -> dict[str, float]:
    """CPU microseconds per footprint of each process kind in one run, from the first message
    copied until the last store held every footprint."""
    n = r["stored"] or 1
    return {k: round(r["cpu_s"].get(k, 0.0) / n * 1e6, 1) for k in PARTS}


def _busiest_share(produced: dict[str, Any]) -> float:
    split = [int(v) for v in produced["partitions"].values()]
    return max(split) / sum(split)


def machine_share(r: dict[str, Any]) -> float:
    """Percent of one core used by every process measured, from the first message to the
    last store (200 = both cores of a 2-core machine)."""
    return 100 * sum(r["cpu_s"].values()) / r["all_stores_s"]


def model(data: dict[str, Any]) -> dict[str, Any] | None:
    """The bigger machine, from the one-worker run on the most partitions measured.

    A worker's rate is the whole pipeline's (to the last store): the one-worker run's, waits
    for the stores and this machine's busy cores included.
    """
    ones = [r for r in data["runs"] if r["workers"] == 1]
    if not ones:
        return None
    r = max(ones, key=lambda x: x["partitions"])
    c = costs(r)
    total = sum(c.values()) - c["bench"]  # the benchmark's copy and polling are not the product
    if not total:
        return None
    worker = c["workers"]
    stores = c["postgres"] + c["clickhouse"] + c["redis"]
    skew = {p: round(_busiest_share(v), 3) for p, v in data["produced"].items()}
    rate = r["all_stores_evs"]
    redis_core = 1e6 / c["redis"] if c["redis"] else None  # Redis runs commands on one thread
    predicted: dict[str, dict[str, int]] = {}
    for p, s in skew.items():
        for cores in MODEL_CORES:
            bounds = [cores * 1e6 / total, min(int(p), cores) * rate, rate / s]
            if redis_core:
                bounds.append(redis_core)
            predicted.setdefault(p, {})[str(cores)] = round(min(bounds))
    return {
        "partitions": r["partitions"],
        "one_worker_evs": rate,
        "one_worker_cpu_percent": round(100 * r["cpu_s"]["workers"] / r["all_stores_s"], 1),
        "us_per_footprint": c,
        "us_total": round(total, 1),
        "worker_share": round(worker / total, 3),
        "stores_share": round(stores / total, 3),
        "kafka_share": round(c["kafka"] / total, 3),
        "worker_core_evs": round(1e6 / worker) if worker else None,
        "redis_core_evs": round(redis_core) if redis_core else None,
        "busiest_partition_share": skew,
        "predicted": predicted,
    }


def _n(value: Any) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _runs_table(data: dict[str, Any]) -> str:
    last = ratios(data["runs"], "all_stores_evs")
    rows = []
    for r in data["runs"]:
        p, w = str(r["partitions"]), str(r["workers"])
        c = costs(r)
        workers = "; ".join(
            f"{w['cpu_percent']:.0f} / {w['runqueue_wait_percent']:.0f} / {w['processed']:,}"
            for w in r["per_worker"]
        )
        ok = all(r.get(k) == r["events"] for k in ("clickhouse_rows", "redis_1m_total"))
        rows.append(
            [
                p,
                w,
                f"**{_n(r['events_per_s'])}** ({_x(data['ratios'][p][w])}, {r['seconds']:.2f} s)",
                f"**{_n(r['all_stores_evs'])}** ({_x(last[p][w])}, {r['all_stores_s']:.2f} s)",
                f"{r['copy_s']:.2f}",
                workers,
                " / ".join(f"{c[k]:.0f}" for k in PARTS),
                f"{machine_share(r):.0f}",
                "–" if r.get("load_average") is None else f"{r['load_average']:.1f}",
                f"{r['stored']:,} / {r['clickhouse_rows']:,} / {r['redis_1m_total']:,}"
                + ("" if ok and not r["capped"] else " **not exact**"),
            ]
        )
    return _table(
        [
            "partitions",
            "workers",
            "to N rows in PostgreSQL: footprints/s (× 1 worker, seconds)",
            "to the last store",
            "copy (s)",
            "each worker to PostgreSQL: CPU % / runqueue wait % / footprints",
            "CPU µs per footprint: " + " / ".join(LABELS[k] for k in PARTS),
            "CPU % of one core, all measured",
            "load average",
            "PostgreSQL / ClickHouse / Redis 1 m",
        ],
        rows,
    )


def _x(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def _span(values: list[float], unit: str = "", digits: int = 0) -> str:
    low, high = (f"{v:.{digits}f}" for v in (min(values), max(values)))
    return f"{low}{unit}" if low == high else f"{low}–{high}{unit}"


def _cores_text(data: dict[str, Any], nproc: int) -> list[str]:
    runs = data["runs"]
    alone = [
        w["runqueue_wait_percent"] or 0 for r in runs if r["workers"] == 1 for w in r["per_worker"]
    ]
    more = [
        w["runqueue_wait_percent"] or 0 for r in runs if r["workers"] > 1 for w in r["per_worker"]
    ]
    loads = [r["load_average"] for r in runs if r.get("load_average") is not None]
    text = (
        f"**What {nproc} cores allow.** Every process measured (workers, servers, this "
        f"benchmark) used {_span([machine_share(r) for r in runs], ' %')} of one core from the "
        f"first message to the last store, of the {100 * nproc} % the machine has"
        + (
            f"; the load average, other tenants included, was {_span(loads, digits=1)}"
            if loads
            else ""
        )
        + ". "
    )
    if alone and more:
        text += (
            f"A worker alone waited for a CPU {_span(alone, ' %')} of the time, with 2 or 4 "
            f"workers {_span(more, ' %')}: past the cores, more workers queue for the same "
            "CPUs as the broker and the stores instead of adding any. "
        )
    text += "The ratios here measure this machine's cores, not the design's ceiling: see the model."
    return [text, ""]


def _model_text(data: dict[str, Any], m: dict[str, Any]) -> list[str]:
    c = m["us_per_footprint"]
    shares = ", ".join(
        f"{LABELS[p]} {c[p]:.0f} µs ({c[p] / m['us_total']:.0%})" for p in PARTS if p != "bench"
    )
    skew = ", ".join(
        f"{share:.1%} on {p} partitions" for p, share in m["busiest_partition_share"].items()
    )
    grown = [costs(r)["workers"] for r in data["runs"] if r["workers"] > 1]
    rate = _n(m["one_worker_evs"])
    rows = [
        [f"{p} partitions"] + [f"{v:,}" for v in by.values()] for p, by in m["predicted"].items()
    ]
    return [
        "**Model for a bigger machine** (computed by the report from the one-worker run on "
        f"{m['partitions']} partitions above; a prediction, not a measurement):",
        "",
        f"- **Per worker:** one worker took every footprint to the last store at {rate}/s, its "
        f"process busy {m['one_worker_cpu_percent']:.0f} % of a core over that time (the rest: "
        "waiting for the stores, the broker or a CPU).",
        f"- **CPU per footprint: {m['us_total']:.0f} µs** in all: {shares}; the benchmark's own "
        f"copy and polling left out. The worker process is {m['worker_share']:.0%} of it, the "
        f"three stores {m['stores_share']:.0%}, the broker {m['kafka_share']:.0%}. Its CPU "
        f"alone would allow 1 s ÷ {c['workers']:.0f} µs ≈ {_n(m['worker_core_evs'])} "
        "footprints/s per core if it never waited; Redis, one thread, "
        f"≈ {_n(m['redis_core_evs'])}/s.",
        f"- **Skew:** footprints are partitioned by link, and the busiest partition holds {skew}. "
        "Its worker finishes last, so more workers give at most (one worker's rate) ÷ (that "
        "share).",
        f"- **Predicted footprints/s on C cores** = the least of C × 1 s ÷ {m['us_total']:.0f} µs "
        f"(every process on the same cores), min(P, C) × {rate} (a worker per partition and "
        f"core), {rate} ÷ the busiest share, and Redis's {_n(m['redis_core_evs'])}. It assumes "
        "the CPU per footprint stays as measured with one worker"
        + (
            f" (here the workers' grew to {_span(grown, ' µs')} with 2 and 4 workers on "
            f"{data.get('nproc')} cores)"
            if grown
            else ""
        )
        + " and that the stores and the broker spread over the cores:",
        "",
        _table(["", *(f"{n} cores" for n in MODEL_CORES)], rows),
    ]


def render(data: dict[str, Any], broker: str) -> str:
    """The section's text for one broker's results."""
    nproc = data.get("nproc")
    packs = ", ".join(
        f"{v['messages']:,} messages on {p} partitions" for p, v in data["produced"].items()
    )
    when = measured_at(data)
    parts = [
        f"### {broker}",
        "",
        f"Command: `{data['command']}`, measured "
        f"{f'{when:%Y-%m-%d %H:%M} UTC' if when else '?'}  \n"
        f"{data['events']:,} footprints per run in packs as the API's producer sends them "
        f"({packs}); "
        f"`nproc` = {nproc}. Each row: a fresh topic and stores, W worker processes in one "
        "group, timed from the first message copied to the topic to N rows in PostgreSQL, once "
        "every worker was ready with its partitions (the copy itself took the seconds shown), and "
        "until ClickHouse and Redis held them too (a worker writes PostgreSQL first, then "
        "counts and writes the other two). CPU per footprint: the CPU seconds each kind of "
        "process used from the first message to the last store ÷ N (PostgreSQL without the "
        "benchmark's polling backend).",
        "",
        _runs_table(data),
        "",
    ]
    if data.get("problems"):
        parts += ["**Counts not exact:** " + "; ".join(data["problems"]), ""]
    if nproc:
        parts += _cores_text(data, nproc)
    m = model(data)
    if m:
        parts += _model_text(data, m)
        parts.append("")
    parts.append(f"Closing line: `{data['result']}`")
    return "\n".join(parts)
