"""Every benchmark at tiny size, as ``make bench`` runs them at full size: each one's output
is checked (every store written, every consumer's count right), and the report gets its
section."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TinyRun:
    """``python -m bench --size tiny``: every benchmark but scale, on one stack, one report."""

    stdout: str
    report: str
    results: Path

    def load(self, name: str) -> dict[str, Any]:
        return dict(json.loads((self.results / f"{name}.json").read_text()))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny", "--report-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return TinyRun(proc.stdout, (out / "BENCHMARKS.md").read_text(), out / "results")


def test_peers_benchmark_at_tiny_size(tiny: TinyRun) -> None:
    data = tiny.load("peers")
    n = data["events"]
    quix = data["quix"]["window_and_sink"]
    worker = data["worker"]
    # Each peer did the whole job: the rows in PostgreSQL, the window counts, the worker's
    # other stores.
    assert data["reference"]["stored"] == n
    assert quix["stored"] == n
    assert quix["window_total"] == n and quix["windows"] == data["windows"]
    assert data["quix"]["window"]["window_total"] == n
    assert worker["stored"] == n and not worker["capped"]
    assert worker["clickhouse_rows"] == n and worker["redis_1m_total"] == n
    assert 20 < worker["peak_rss_mb"] < 4096  # sampled from the worker process, in MB
    assert data["raw"]["before"]["events"] == data["raw"]["after"]["events"] == n
    # Faust's intake alone took the whole topic, timed from ready like the worker.
    intake = data["faust_intake"]
    assert intake["events"] == n and intake["batches"] >= 1
    # (A tiny topic comes as one batch: its first batch is its last.)
    assert 0 <= intake["from_first_batch_s"] < intake["seconds"]
    for name, ratio in data["ratios"].items():
        assert ratio > 0, name
    assert data["result"] in tiny.stdout
    report = tiny.report
    assert "## 7. Peers in the same run" in report
    assert "Faust's intake alone" in report
    assert data["result"] in report
    print(data["result"])


def test_api_benchmark_at_tiny_size(tiny: TinyRun) -> None:
    """Both ratios (trivial and 2 ms handlers) measured, nothing lost or failed, the section
    written; a ratio is not asserted against its goal: a tiny run on a shared machine is noise."""
    data = tiny.load("api")
    assert data["ratio"] > 0 and data["io"]["ratio"] > 0
    assert data["io"]["one_connection_ratio"] > 0
    assert all(r["failed"] == 0 for runs in data["runs"].values() for r in runs)
    # The same middleware with a delivery process: measured, its child's CPU counted.
    for d in (data, data["io"]):
        assert d["process"]["ratio"] > 0 and d["process"]["delivery_cpu_percent"] > 0
        assert len(d["runs"]["process"]) == 2
    assert data["broker_up"]["exit_codes_delivery_process"] == [0, 0]
    assert data["failed_broker_down"] == 0
    in_process = data["in_process"]
    assert in_process["plain_us"] > 0 and in_process["tracked_us"] > 0
    assert in_process["delivered"] == in_process["offered"] == in_process["requests_tracked"]
    assert in_process["delivered_process"] == in_process["requests_process"] > 0
    assert in_process["process_us"] > 0 and in_process["process_child_us"] > 0
    # Every request the load generator counted left a footprint, on the topic or in a spool.
    assert data["broker_up"]["recorded"] >= data["broker_up"]["served"] > 0
    for down in data["broker_down"].values():
        assert down["kept_in_spool_after_shutdown"] >= down["served_total"] > 0
    assert data["result"] in tiny.stdout
    report = tiny.report
    assert "## 2. API: capture middleware overhead" in report
    assert "handler waiting 2 ms" in report
    assert "Ratio with a delivery process / without" in report
    assert data["result"] in report


def test_worker_live_notify_and_stores_benchmarks_at_tiny_size(tiny: TinyRun) -> None:
    """Each did its whole job (every footprint in every store, every notification delivered,
    every request answered, the stores' answers identical) and wrote its section."""
    data = {n: tiny.load(n) for n in ("worker", "live", "notify", "stores")}

    worker, n = data["worker"]["worker"], data["worker"]["events"]
    assert worker["stored"] == worker["clickhouse_rows"] == worker["redis_1m_total"] == n
    assert worker["heartbeat_processed"] == n and worker["exit_code"] == 0
    assert data["worker"]["raw"]["events_per_s"] > 0 and data["worker"]["ratio"] > 0
    assert (
        data["worker"]["per_event_costs"]["wire.unpack, packs of 500 (msgspec)"]["us_per_event"] > 0
    )

    loads = data["live"]["loads"].values()
    assert loads and all(r["failed"] == 0 and r["requests"] > 0 for r in loads)
    assert data["live"]["sample"]["total"] > 0

    latency, fanout = data["notify"]["latency"], data["notify"]["fanout"]
    assert latency["delivered"] == latency["sent"] > 0
    # Where each event's time went: every delivered event seen on Redis on its way.
    assert latency["hops_events"] == latency["delivered"]
    hops = latency["hops"]
    assert 0 < hops["acked"]["p50_ms"] <= hops["on_redis"]["p50_ms"] <= latency["p50_ms"] + 1
    assert fanout["published"] == fanout["followers"]
    assert fanout["sockets_delivered"] == fanout["sockets"] > 0
    # The batching policies alone: each handled every event it was given, and idled.
    policies = data["notify"]["batching"]["policies"]
    assert set(policies) == {"clock_10ms", "clock_2ms", "ready_2ms"}
    for p in policies.values():
        assert p["handled"] == p["events"] > 0 and p["passes_per_s"] > 0
        assert p["idle_cpu_percent"] >= 0

    stores = data["stores"]
    assert stores["mismatches"] == []
    for store, steps in stores["loads"].items():
        assert all(step["rows"] == int(rows) for rows, step in steps.items()), store

    report = tiny.report
    for title in ("## 1. Worker throughput", "## 4. Live stats latency",
                  "## 5. Notifications: latency and fan-out", "## 3. Stores"):  # fmt: skip
        assert title in report
    assert "until the worker published the delivery on Redis" in report
    assert "**The batching policy alone**" in report
    for result in data.values():
        assert result["result"] in tiny.stdout and result["result"] in report


def test_query_benchmark_stores_agree_at_tiny_size(tiny: TinyRun) -> None:
    """2,000 generated footprints: both stores hold the same rows and give the same answers."""
    data = tiny.load("query")
    assert data["mismatches"] == []
    (step,) = data["steps"]
    sums = data["checksums"][str(step)]
    assert sums["equal"] and sums["postgres"] == sums["chdb"]
    assert sum(site[1] for site in sums["postgres"]) == step == 2_000  # rows over the 3 sites
    for name in ("breakdown", "funnel", "timeseries"):
        by_store = data["results"][str(step)][name]
        assert by_store["PostgreSQL"]["median_ms"] > 0 and by_store["chdb"]["median_ms"] > 0
        assert "window functions" in by_store["ClickHouse 18.16"]["unsupported"]
    counts = data["answer_counts"][str(step)]
    assert counts["breakdown_rows"] >= 5  # direct, search, social… (11 sources in the data)
    everyone, *steps = counts["funnel_visitors"]
    assert everyone >= steps[0] > 0 and steps == sorted(steps, reverse=True)
    assert counts["timeseries_days"] >= 25  # ~30 days with footprints of the site
    assert data["result"] in tiny.stdout and "mismatches=0" in data["result"]
    report = tiny.report
    assert "## 8. Stats API v2 at scale" in report and data["result"] in report


def test_scale_benchmark_at_tiny_size(tmp_path: Path) -> None:
    """One and two workers in one group on Apache Kafka: the group split the partitions, each
    worker stored its share, every store holds exactly N, and section 9 is written."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "scale", "--size", "tiny", "--broker", "kafka"]
        + ["--report-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "results" / "scale.kafka.json").read_text())
    n = data["events"]
    assert [(r["partitions"], r["workers"]) for r in data["runs"]] == [(4, 1), (4, 2)]
    for r in data["runs"]:
        assert r["stored"] == r["clickhouse_rows"] == r["redis_1m_total"] == n
        assert sorted(p for a in r["assignments"] for p in a) == [0, 1, 2, 3]
        # Each worker processed footprints of its own partitions only: the split adds up to N.
        processed = [w["processed"] for w in r["per_worker"]]
        assert len(processed) == r["workers"] and all(processed) and sum(processed) == n
        assert r["events_per_s"] > 0 and r["cpu_s"]["workers"] > 0
    assert data["problems"] == [] and data["nproc"] >= 1
    assert data["ratios"]["4"]["1"] == 1.0 and data["ratios"]["4"]["2"] > 0
    assert data["result"] in proc.stdout and "exact=1" in data["result"]
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## 9. Workers side by side" in report and data["result"] in report
    assert "Model for a bigger machine" in report
