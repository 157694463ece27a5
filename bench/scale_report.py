"""Section 9 of BENCHMARKS.md: workers side by side, and a model for a bigger machine.

Every figure of the model is computed from the saved runs (``bench/results/scale*.json``):
the one-worker rate, the CPU each process spent per footprint, the busiest partition's share.
"""

from __future__ import annotations

from typing import Any

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


def ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each run's rate over the one-worker rate on the same partition count."""
    one = {r["partitions"]: r["events_per_s"] for r in runs if r["workers"] == 1}
    out: dict[str, dict[str, float | None]] = {}
    for r in runs:
        base = one.get(r["partitions"])
        out.setdefault(str(r["partitions"]), {})[str(r["workers"])] = (
            round(r["events_per_s"] / base, 3) if base else None
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


def model(data: dict[str, Any]) -> dict[str, Any] | None:
    """The bigger machine, from the one-worker run on the most partitions measured."""
    ones = [r for r in data["runs"] if r["workers"] == 1]
    if not ones:
        return None
    r = max(ones, key=lambda x: x["partitions"])
    c = costs(r)
    total = sum(c.values()) - c["bench"]  # the benchmark's copy and polling are not the product
    worker = c["workers"]
    stores = c["postgres"] + c["clickhouse"] + c["redis"]
    shares = {p: data["produced"][p] for p in data["produced"]}
    skew = {p: round(_busiest_share(v), 3) for p, v in shares.items()}
    worker_core = 1e6 / worker if worker else None  # one worker with a core of its own
    redis_core = 1e6 / c["redis"] if c["redis"] else None  # Redis runs commands on one thread
    predicted: dict[str, dict[str, int]] = {}
    for p, s in skew.items():
        for cores in MODEL_CORES:
            bounds = [cores * 1e6 / total]
            if worker_core:
                bounds.append(min(int(p), cores) * worker_core)
                bounds.append(worker_core / s)
            if redis_core:
                bounds.append(redis_core)
            predicted.setdefault(p, {})[str(cores)] = round(min(bounds))
    return {
        "partitions": r["partitions"],
        "one_worker_evs": r["events_per_s"],
        "one_worker_cpu_percent": r["per_worker"][0]["cpu_percent"],
        "us_per_footprint": c,
        "us_total": round(total, 1),
        "worker_share": round(worker / total, 3) if total else None,
        "stores_share": round(stores / total, 3) if total else None,
        "kafka_share": round(c["kafka"] / total, 3) if total else None,
        "worker_core_evs": round(worker_core) if worker_core else None,
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
    rows = []
    for r in data["runs"]:
        ratio = data["ratios"][str(r["partitions"])][str(r["workers"])]
        c = costs(r)
        workers = "; ".join(
            f"{w['cpu_percent']:.0f} / {w['runqueue_wait_percent']:.0f} / {w['processed']:,}"
            for w in r["per_worker"]
        )
        ok = all(r.get(k) == r["events"] for k in ("clickhouse_rows", "redis_1m_total"))
        rows.append(
            [
                str(r["partitions"]),
                str(r["workers"]),
                f"**{_n(r['events_per_s'])}**",
                "–" if ratio is None else f"{ratio:.2f}×",
                f"{r['seconds']:.2f} ({r['copy_s']:.2f})",
                f"{_n(r['all_stores_evs'])} ({r['all_stores_s']:.2f} s)",
                workers,
                " / ".join(f"{c[p]:.0f}" for p in PARTS),
                "–" if r.get("load_average") is None else f"{r['load_average']:.1f}",
                f"{r['stored']:,} / {r['clickhouse_rows']:,} / {r['redis_1m_total']:,}"
                + ("" if ok and not r["capped"] else " **not exact**"),
            ]
        )
    return _table(
        [
            "partitions",
            "workers",
            "footprints/s",
            "× 1 worker",
            "seconds (copy)",
            "to the last store: footprints/s (seconds)",
            "each worker: CPU % / runqueue wait % / footprints",
            "CPU µs per footprint: " + " / ".join(LABELS[p] for p in PARTS),
            "load average",
            "PostgreSQL / ClickHouse / Redis 1 m",
        ],
        rows,
    )


def _model_text(data: dict[str, Any], m: dict[str, Any]) -> list[str]:
    c = m["us_per_footprint"]
    shares = ", ".join(
        f"{LABELS[p]} {c[p]:.0f} µs ({c[p] / m['us_total']:.0%})" for p in PARTS if p != "bench"
    )
    skew = ", ".join(
        f"{share:.1%} of the footprints on {p} partitions"
        for p, share in m["busiest_partition_share"].items()
    )
    cores = list(MODEL_CORES)
    rows = [
        [f"{p} partitions"] + [f"{v:,}" for v in by.values()] for p, by in m["predicted"].items()
    ]
    return [
        "**Model for a bigger machine** (computed by the report from the one-worker run on "
        f"{m['partitions']} partitions above, not measured on one):",
        "",
        f"- One worker stored {m['one_worker_evs']:,} footprints/s using "
        f"{m['one_worker_cpu_percent']:.0f} % of a core. A footprint cost {m['us_total']:.0f} "
        f"µs of CPU in all: {shares} (the benchmark's own copy and polling left out). The "
        f"worker process is {m['worker_share']:.0%} of it, the three stores "
        f"{m['stores_share']:.0%}, the broker {m['kafka_share']:.0%}.",
        f"- A worker with a core of its own would store 1 s / {c['workers']:.0f} µs ≈ "
        f"{_n(m['worker_core_evs'])} footprints/s; Redis, one thread, ≈ "
        f"{_n(m['redis_core_evs'])}/s at {c['redis']:.0f} µs per footprint.",
        f"- Partitions are keyed by link: the busiest partition holds {skew}. Its worker "
        "finishes last, so W ≥ P workers give at most (one worker's rate) ÷ (that share).",
        "- Predicted footprints/s on C cores = the least of: C × 1 s ÷ "
        f"{m['us_total']:.0f} µs (every process sharing the cores), min(P, C) × "
        f"{_n(m['worker_core_evs'])} (one worker per partition and core), "
        f"{_n(m['worker_core_evs'])} ÷ the busiest share, and Redis's {_n(m['redis_core_evs'])}. "
        "It assumes the CPU per footprint stays as measured with one worker (compare the "
        "µs columns of the 2- and 4-worker runs) and the stores spread over the cores:",
        "",
        _table(["", *(f"{n} cores" for n in cores)], rows),
    ]


def render(data: dict[str, Any], broker: str) -> str:
    """The section's text for one broker's results."""
    nproc = data.get("nproc")
    packs = ", ".join(
        f"{v['messages']:,} messages on {p} partitions" for p, v in data["produced"].items()
    )
    parts = [
        f"### {broker}",
        "",
        f"Command: `{data['command']}`, measured {data.get('measured_at', '?')}  \n"
        f"{data['events']:,} footprints per run in packs as the API's producer sends them "
        f"({packs}); "
        f"`nproc` = {nproc}. Each row: a fresh topic and stores, W worker processes in one "
        "group, timed from the first message copied to the topic to N rows in PostgreSQL, once "
        "every worker was ready with its partitions (the copy's own seconds in brackets), and "
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
    cap = 100 * (nproc or 0)
    ones = [r for r in data["runs"] if r["workers"] == 1]
    if ones and nproc:
        used = max(
            sum(costs(r)[p] for p in PARTS) * r["events_per_s"] / 1e6 * 100 for r in data["runs"]
        )
        parts += [
            f"**What {nproc} cores allow.** The processes measured used at most {used:.0f} % "
            f"of the {cap} % the machine has (the rest: other tenants and the kernel; load "
            "averages above). A second worker only gets the CPU the first one left to the "
            "broker and the stores; past the core count, workers wait in the runqueue "
            "instead of running (the wait column). A ratio here measures this machine's "
            "cores, not the design's ceiling: see the model.",
            "",
        ]
    m = model(data)
    if m:
        parts += _model_text(data, m)
        parts.append("")
    parts.append(f"Closing line: `{data['result']}`")
    return "\n".join(parts)
