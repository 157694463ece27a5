"""Prometheus metrics: the worker's collector and the API's ``GET /metrics``, without servers.

The API is used without its lifespan (as in test_footprints_route): footprints stay in the
producer's buffer, which is exactly what the pending gauge must show.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.auth import mint_token
from api.main import create_app
from api.metrics import RequestMetricsMiddleware, router
from streams.metrics import (
    SINK_WRITE_SECONDS,
    PartitionOffsets,
    monitor_offsets,
    register_worker_metrics,
    timed_write,
    worker_registry,
)
from streams.sinks import Batch
from streams.sinks.memory import MemorySink
from streams.status import WorkerStatus
from tests.unit.offline import offline_settings


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return samples(generate_latest(registry).decode())


# --- the worker ---------------------------------------------------------------------------------


def busy_worker() -> WorkerStatus:
    s = WorkerStatus(worker_id="host:42")
    s.processed, s.stored, s.dead_lettered, s.duplicates = 1200, 1197, 3, 5
    s.notification_events, s.notifications, s.batches = 40, 95, 7
    s.last_batch_at = 1_700_000_000.0
    s.sinks = {"postgres": "ok", "clickhouse": "unavailable", "redis": "bug"}
    s.positions = {"footprints:0": 599, "footprints:1": 600}
    s.error("clickhouse: unavailable: connection refused")
    s.failed("clickhouse", "unavailable", 4)
    s.failed("postgres", "refused", 3)
    s.failed("redis", "bug")
    s.bug("redis: bug: KeyError: 'link' (redis.py:60 in write)")
    return s


def test_worker_collector_reports_the_status_counters() -> None:
    registry = CollectorRegistry()
    offsets = [PartitionOffsets("footprints", 0, 700, 600), PartitionOffsets("footprints", 1, 5, 9)]
    register_worker_metrics(registry, busy_worker(), lambda: offsets)
    got = scrape(registry)
    assert got[("footprint_worker_events_processed_total", ())] == 1200
    assert got[("footprint_worker_events_stored_total", ())] == 1197
    assert got[("footprint_worker_dead_lettered_total", ())] == 3
    assert got[("footprint_worker_duplicates_total", ())] == 5
    assert got[("footprint_worker_notifications_total", ())] == 95
    assert got[("footprint_worker_notification_events_total", ())] == 40
    assert got[("footprint_worker_batches_total", ())] == 7
    assert got[("footprint_worker_info", (("worker_id", "host:42"),))] == 1
    assert got[("footprint_worker_sink_up", (("sink", "postgres"),))] == 1
    assert got[("footprint_worker_sink_up", (("sink", "clickhouse"),))] == 0
    assert got[("footprint_worker_last_error_timestamp_seconds", ())] > 0
    # A store that is down and a bug of the worker's own code are told apart.
    assert got[("footprint_worker_sink_state", (("sink", "clickhouse"), ("state", "unavailable")))]
    assert got[("footprint_worker_sink_state", (("sink", "clickhouse"), ("state", "bug")))] == 0
    assert got[("footprint_worker_sink_state", (("sink", "redis"), ("state", "bug")))] == 1
    assert got[("footprint_worker_sink_state", (("sink", "postgres"), ("state", "ok")))] == 1
    failures = "footprint_worker_sink_failures_total"
    assert got[(failures, (("kind", "unavailable"), ("sink", "clickhouse")))] == 4
    assert got[(failures, (("kind", "refused"), ("sink", "postgres")))] == 3
    assert got[(failures, (("kind", "bug"), ("sink", "redis")))] == 1
    assert got[(failures, (("kind", "bug"), ("sink", "clickhouse")))] == 0
    assert got[("footprint_worker_last_bug_timestamp_seconds", ())] > 0
    part0 = (("partition", "0"), ("topic", "footprints"))
    assert got[("footprint_worker_processed_offset", part0)] == 599
    assert got[("footprint_worker_consumer_lag", part0)] == 100
    assert got[("footprint_worker_end_offset", part0)] == 700
    # A commit ahead of a stale end offset is no lag, never a negative one.
    assert (
        got[("footprint_worker_consumer_lag", (("partition", "1"), ("topic", "footprints")))] == 0
    )


def test_a_fresh_worker_exposes_zeroes_and_no_optional_gauges() -> None:
    registry = CollectorRegistry()
    register_worker_metrics(registry, WorkerStatus())
    got = scrape(registry)
    assert got[("footprint_worker_events_processed_total", ())] == 0
    names = {name for name, _ in got}
    assert "footprint_worker_last_batch_timestamp_seconds" not in names
    assert "footprint_worker_consumer_lag" not in names


def test_monitor_offsets_prefer_the_commit_and_fall_back_to_the_read_offset() -> None:
    a, b, c = TP("footprints", 0), TP("footprints", 1), TP("notifications", 0)
    monitor = SimpleNamespace(
        tp_end_offsets={a: 100, b: 50, c: 10},
        tp_committed_offsets={a: 90},
        tp_read_offsets={a: 95, b: 44},
    )
    assert monitor_offsets(monitor) == [
        PartitionOffsets("footprints", 0, 100, 90),
        PartitionOffsets("footprints", 1, 50, 45),
    ]
    empty = SimpleNamespace(tp_end_offsets={}, tp_committed_offsets={}, tp_read_offsets={})
    assert monitor_offsets(empty) == []


def test_sink_write_latency_is_observed_per_sink() -> None:
    registry = CollectorRegistry()
    registry.register(SINK_WRITE_SECONDS)
    before = scrape(registry).get(
        ("footprint_worker_sink_write_seconds_count", (("sink", "list"),))
    )
    sink = MemorySink("list")
    asyncio.run(timed_write(sink, Batch()))
    asyncio.run(timed_write(sink, Batch()))
    got = scrape(registry)
    assert (
        got[("footprint_worker_sink_write_seconds_count", (("sink", "list"),))] == (before or 0) + 2
    )
    assert len(sink.batches) == 2


def test_worker_registry_includes_process_metrics() -> None:
    names = {name for name, _ in scrape(worker_registry())}
    assert "footprint_worker_events_processed_total" in names
    assert "python_info" in names


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for key in list(os.environ):
        if key.startswith("FOOTPRINT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    return offline_settings(tmp_path)


def reader(app: FastAPI) -> TestClient:
    """A client with an admin token, as a Prometheus scrape config gives one."""
    token = mint_token(app.state.settings, "prometheus", admin=True)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def test_api_metrics_endpoint_counts_footprints_and_pending(settings: Any) -> None:
    app = create_app(settings)
    client = reader(app)
    body = [{"method": "GET", "link": "/a"}, {"method": "GET", "link": "/b"}]
    assert client.post("/api/footprints", json=body).status_code == 202
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    got = samples(r.text)
    assert got[("footprint_api_footprints_offered_total", ())] == 2
    assert got[("footprint_api_footprints_delivered_total", ())] == 0
    assert got[("footprint_api_footprints_pending", ())] == 2  # no broker in this test
    assert got[("footprint_api_producer_connected", ())] == 0
    assert got[("footprint_api_websocket_connections", ())] == 0
    assert "python_info" in {name for name, _ in got}, "the process's own metrics too"
    # Scraping is not a visit: /metrics is never recorded as a footprint.
    assert client.get("/metrics").status_code == 200
    assert samples(client.get("/metrics").text)[("footprint_api_footprints_offered_total", ())] == 2


def test_under_footprint_run_the_api_also_shows_the_embedded_worker(settings: Any) -> None:
    app = create_app(settings.model_copy(update={"embedded_worker": True}))
    got = samples(reader(app).get("/metrics").text)
    assert ("footprint_worker_events_processed_total", ()) in got
    assert ("footprint_api_footprints_offered_total", ()) in got


def test_two_apps_in_one_process_have_their_own_registries(settings: Any) -> None:
    first, second = reader(create_app(settings)), reader(create_app(settings))
    first.post("/api/footprints", json={"method": "GET", "link": "/a"})
    offered = ("footprint_api_footprints_offered_total", ())
    assert samples(first.get("/metrics").text)[offered] == 1
    assert samples(second.get("/metrics").text)[offered] == 0


def test_metrics_need_an_admin_token(settings: Any) -> None:
    app = create_app(settings)
    anonymous = TestClient(app).get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "footprint_api" not in anonymous.text
    user = mint_token(settings, "alice")
    refused = TestClient(app).get("/metrics", headers={"Authorization": f"Bearer {user}"})
    assert refused.status_code == 403
    assert "footprint_api" not in refused.text
    assert reader(app).get("/metrics").status_code == 200


def test_request_metrics_by_route_template(settings: Any) -> None:
    app = FastAPI()
    app.state.settings = settings
    app.include_router(router)

    @app.get("/posts/{post_id}")
    async def post(post_id: int) -> dict[str, int]:
        return {"post": post_id}

    app.add_middleware(RequestMetricsMiddleware)
    client = reader(app)
    for path in ("/posts/1", "/posts/2", "/posts/x", "/nowhere", "/nowhere/else"):
        client.get(path)
    got = samples(client.get("/metrics").text)
    ok = (("method", "GET"), ("route", "/posts/{post_id}"), ("status", "200"))
    assert got[("footprint_api_requests_total", ok)] == 2
    bad = (("method", "GET"), ("route", "/posts/{post_id}"), ("status", "422"))
    assert got[("footprint_api_requests_total", bad)] == 1
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert got[("footprint_api_requests_total", unmatched)] == 2, "one series for any 404 path"
    latency = (("method", "GET"), ("route", "/posts/{post_id}"))
    assert got[("footprint_api_request_seconds_count", latency)] == 3
