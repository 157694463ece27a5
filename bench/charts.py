"""The PNG charts of the report (matplotlib; skipped with a note when it is not installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import Output

__all__ = ["chart_paths", "draw"]

# The benchmarks that have a chart, each drawn as charts/NAME.png.
CHARTS = ("worker", "api", "stores")


def chart_paths(out: Output, results: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Where ``draw`` puts each chart of these results, without drawing it."""
    return {name: out.charts / f"{name}.png" for name in CHARTS if results.get(name)}


def draw(out: Output, results: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Draw a chart per benchmark that has results; return their paths by benchmark (none
    without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    out.charts.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}

    worker = results.get("worker")
    if worker:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        names = ["raw aiokafka\nconsumer", "Footprint\nworker", "goal\n(0.20 × raw)"]
        values = [
            worker["raw"]["events_per_s"],
            worker["worker"]["events_per_s"],
            0.2 * worker["raw"]["events_per_s"],
        ]
        bars = left.bar(names, values, color=["#888888", "#d62728", "#cccccc"])
        left.bar_label(bars, labels=[f"{v:,.0f}" for v in values])
        left.set_ylabel("footprints / s")
        left.set_title(f"Worker throughput, {worker['events']:,} footprints")
        costs = {
            k: v["us_per_event"]
            for k, v in worker["per_event_costs"].items()
            if not k.startswith("_")
        }
        per_event_worker = 1e6 / worker["worker"]["events_per_s"]
        labels = [*costs, "whole worker (measured)"]
        vals = [*costs.values(), per_event_worker]
        right.barh(labels, vals, color=["#1f77b4"] * len(costs) + ["#d62728"])
        right.set_xscale("log")
        right.set_xlabel("µs per footprint (log)")
        right.set_title("Cost of each step alone vs the whole worker")
        right.invert_yaxis()
        fig.tight_layout()
        made["worker"] = out.charts / "worker.png"
        fig.savefig(made["worker"], dpi=110)
        plt.close(fig)

    api = results.get("api")
    if api:
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        names = ["without", "with middleware", "broker down", "broker down,\nspooling"]
        down = api["broker_down"]
        values = [
            api["plain_rps"],
            api["tracked_rps"],
            down["broker down"]["rps"],
            down["broker down, spooling"]["rps"],
        ]
        bars = left.bar(names, values, color=["#888888", "#1f77b4", "#ff7f0e", "#ff7f0e"])
        left.bar_label(bars, labels=[f"{v:,.0f}" for v in values])
        left.set_ylabel("requests / s")
        left.set_title(f"Host app, {api['connections']} connections")
        lat = api["latency_1_connection"]
        x = [0, 1]
        right.bar(
            [i - 0.2 for i in x],
            [lat["plain"]["p50_ms"], lat["plain"]["p99_ms"]],
            0.4,
            label="without",
            color="#888888",
        )
        right.bar(
            [i + 0.2 for i in x],
            [lat["tracked"]["p50_ms"], lat["tracked"]["p99_ms"]],
            0.4,
            label="with middleware",
            color="#1f77b4",
        )
        right.set_xticks(x, ["p50", "p99"])
        right.set_ylabel("ms")
        right.set_title("Latency, one connection")
        right.legend()
        fig.tight_layout()
        made["api"] = out.charts / "api.png"
        fig.savefig(made["api"], dpi=110)
        plt.close(fig)

    stores = results.get("stores")
    if stores:
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
        for name, by_size in stores["queries"].items():
            sizes = sorted(int(s) for s in by_size)
            left.plot(sizes, [by_size[str(s)]["median_ms"] for s in sizes], marker="o", label=name)
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel("rows in the table (7 days)")
        left.set_ylabel("dashboard, median ms (log)")
        left.set_title("Dashboard over the last 24 h")
        left.legend(fontsize=8)
        steps = stores["steps"]
        width = 0.8 / len(stores["loads"])
        for i, (name, by_size) in enumerate(stores["loads"].items()):
            right.bar(
                [j + i * width for j in range(len(steps))],
                [by_size[str(s)]["rows_per_s"] for s in steps],
                width,
                label=name,
            )
        right.axhline(100_000, color="black", linestyle="--", linewidth=1, label="goal 100k rows/s")
        right.set_xticks(
            [j + 0.4 - width / 2 for j in range(len(steps))], [f"{s:,}" for s in steps]
        )
        right.set_xlabel("rows after the step")
        right.set_ylabel("rows / s")
        right.set_title("Load rate (PostgreSQL COPY, ClickHouse INSERT…SELECT)")
        right.legend(fontsize=8)
        fig.tight_layout()
        made["stores"] = out.charts / "stores.png"
        fig.savefig(made["stores"], dpi=110)
        plt.close(fig)
    return made
