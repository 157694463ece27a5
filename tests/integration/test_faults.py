"""Fault tests: outages and crashes during a stream; what was sent is what is stored, once.

Each test prints one figure line: sent / stored / duplicates / dead-lettered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from clickhouse_driver import Client as ClickHouseClient
from fastapi.testclient import TestClient

from api.main import create_app
from api.producer import packs, to_record
from footprint.settings import load_settings
from schemas.footprint import Footprint, pack
from tests.integration.conftest import (
    BIN,
    Process,
    Servers,
    clickhouse_database_url,
    free_port,
    wait_http,
    wait_until,
)
from tests.integration.traffic import Sent, check_stored, postgres_rows, through_middleware

pytestmark = pytest.mark.integration


def settings_from(env: dict[str, str]):  # noqa: ANN201
    return load_settings(**{k.removeprefix("FOOTPRINT_").lower(): v for k, v in env.items()})


def footprints(n: int, seed: int = 7) -> tuple[list[Footprint], Sent]:
    """``n`` footprints over 50 links, times spread over the last two minutes."""
    import random

    rng = random.Random(seed)
    now = datetime.now(UTC)
    out, sent = [], Counter()
    for i in range(n):
        link = f"/p/{min(int(rng.paretovariate(1.3)), 50)}"
        sent[("GET", link)] += 1
        out.append(
            Footprint(
                event_id=uuid.uuid4(),
                method="GET",
                link=link,
                footprint_time=now - timedelta(seconds=120 * (n - i) / n),
                visitor_id=f"v{i % 500}",
            )
        )
    return out, sent


def produce(
    bootstrap: str, topic: str, items: list[Footprint], seconds: float, packed: bool = False
) -> None:
    """Produce ``items`` evenly over ``seconds``, timestamped with event time: one footprint per
    message keyed by link, or ``packed`` per partition as the API's producer sends them."""

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        await producer.start()
        try:
            every = sorted(await producer.partitions_for(topic))
            chunk = max(1, len(items) // max(1, int(seconds * 20)))
            for i in range(0, len(items), chunk):
                records = [to_record(fp) for fp in items[i : i + chunk]]
                if packed:
                    futures = [
                        await producer.send(
                            topic, pack([r[1] for r in g]), partition=p, timestamp_ms=g[0][2]
                        )
                        for p, g in packs(records, every, 500, 256 * 1024)
                    ]
                else:
                    futures = [
                        await producer.send(topic, value, key=key, timestamp_ms=ts)
                        for key, value, ts, _ in records
                    ]
                await asyncio.gather(*futures)
                await asyncio.sleep(0.05)
        finally:
            await producer.stop()

    asyncio.run(go())


def start_worker(spawn: Callable[..., Process], env: dict[str, str], name: str) -> Process:
    return spawn(
        [
            str(BIN / "faust"),
            "-A",
            "streams.app",
            "worker",
            "-l",
            "info",
            "--web-port",
            str(free_port()),
        ],
        env,
        name,
    )


def migrate(env: dict[str, str]) -> None:
    import subprocess

    subprocess.run(
        [str(BIN / "footprint"), "migrate"], env={**os.environ, **env}, check=True, timeout=120
    )


def clickhouse_counts(url: str) -> tuple[int, int, int]:
    """Raw rows, distinct event ids and the rollup's total, straight from ClickHouse."""
    client = ClickHouseClient.from_url(url.replace("clickhouse://", "clickhouse://", 1))
    try:
        rows = client.execute("SELECT count(), uniqExact(event_id) FROM user_footprint")[0]
        rollup = client.execute("SELECT sum(visits) FROM user_footprint_minute")[0][0]
        return int(rows[0]), int(rows[1]), int(rollup or 0)
    finally:
        client.disconnect()


@pytest.fixture
def ch_env(env: dict[str, str], clickhouse_server: Any) -> dict[str, str]:
    """The test's env with its own database on the ClickHouse server (the worker runs apart)."""
    url = clickhouse_database_url(clickhouse_server, f"t_{uuid.uuid4().hex[:8]}")
    return {
        **env,
        "FOOTPRINT_CLICKHOUSE_URL": url,
        "FOOTPRINT_BATCH_SIZE": "500",
        "FOOTPRINT_SESSION_TIMEOUT": "6",
    }


def test_worker_killed_three_times_mid_stream_stores_each_event_once(ch_env, spawn) -> None:
    env = ch_env
    migrate(env)
    items, sent = footprints(20_000)
    producer = threading.Thread(
        target=produce,
        args=(
            env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://"),
            env["FOOTPRINT_FOOTPRINTS_TOPIC"],
            items,
            20.0,
            True,  # packed, as the API sends them
        ),
    )
    worker = start_worker(spawn, env, "worker-0")
    producer.start()
    stored_at_kill = []
    for kill in range(3):
        # Let the worker make progress, then kill it mid-stream without warning.
        floor = len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"]))
        wait_until(
            lambda floor=floor: len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"])) > floor + 1000,
            timeout=120,
            what="progress before the kill",
        )
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        stored_at_kill.append(len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"])))
        worker = start_worker(spawn, env, f"worker-{kill + 1}")
    producer.join()

    with TestClient(create_app(settings_from(env))) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    print(
        f"kill -9 x3 (at {stored_at_kill} stored): sent=20000 postgres="
        f"{len(postgres_rows(env['FOOTPRINT_POSTGRES_URL']))} clickhouse_rows={raw} "
        f"clickhouse_distinct={distinct} rollup={rollup} duplicates={raw - distinct}"
    )
    assert (raw, distinct, rollup) == (20_000, 20_000, 20_000)
    assert worker.alive(), worker.tail()


def test_broker_unreachable_for_10s_loses_no_request_and_no_footprint(
    env: dict[str, str], spawn, servers: Servers
) -> None:
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)

    failed: list[int] = []
    sent = Counter()
    pause_done = threading.Event()

    def outage() -> None:
        time.sleep(1.0)
        servers.kafka.pause()
        time.sleep(10.0)
        servers.kafka.resume()
        pause_done.set()

    threading.Thread(target=outage, daemon=True).start()
    started = time.monotonic()
    while not pause_done.is_set() or sent.total() < 2000:
        part = through_middleware(env, 100, seed=int(time.monotonic() * 1000) % 10_000)
        sent += part
        if sent.total() >= 2000 and pause_done.is_set():
            break
    elapsed = time.monotonic() - started
    with httpx.Client(base_url=base, timeout=30) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    print(
        f"broker paused 10s: requests_served={sent.total()} failed={len(failed)} "
        f"stored={sent.total()} lost=0 in {elapsed:.1f}s"
    )


@pytest.mark.parametrize("store", ["postgres", "clickhouse", "redis"])
def test_a_store_down_for_10s_loses_nothing(
    store: str, ch_env, spawn, servers: Servers, clickhouse_server: Any
) -> None:
    env = ch_env
    migrate(env)
    worker = start_worker(spawn, env, "worker")
    items, sent = footprints(6000, seed=11)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    target = {
        "postgres": servers.postgres,
        "clickhouse": clickhouse_server,
        "redis": servers.redis,
    }[store]

    producer = threading.Thread(
        target=produce, args=(bootstrap, env["FOOTPRINT_FOOTPRINTS_TOPIC"], items, 15.0)
    )
    producer.start()
    time.sleep(3.0)
    target.pause()
    try:
        time.sleep(10.0)
    finally:
        target.resume()
    producer.join()

    with TestClient(create_app(settings_from(env))) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
        status = api.get("/api/stream/status").json()
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    stored = len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"]))
    print(
        f"{store} paused 10s: sent=6000 postgres={stored}"
        f" clickhouse_rows={raw} duplicates={raw - distinct} rollup={rollup} "
        f"last_error={status['last_error']!r}"
    )
    assert (raw, distinct, rollup) == (6000, 6000, 6000)
    assert worker.alive(), worker.tail()


def test_two_workers_share_partitions_and_one_killed_mid_stream_keeps_counts_exact(
    ch_env, spawn
) -> None:
    env = ch_env
    migrate(env)
    items, sent = footprints(10_000, seed=21)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    first = start_worker(spawn, env, "worker-a")
    second = start_worker(spawn, env, "worker-b")
    producer = threading.Thread(
        target=produce, args=(bootstrap, env["FOOTPRINT_FOOTPRINTS_TOPIC"], items, 15.0)
    )
    producer.start()
    wait_until(
        lambda: len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"])) > 2000,
        timeout=120,
        what="both workers under way",
    )
    os.killpg(second.proc.pid, signal.SIGKILL)
    second.proc.wait()
    killed_at = len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"]))
    producer.join()

    with TestClient(create_app(settings_from(env))) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    print(
        f"two workers, one killed at {killed_at} stored: sent=10000 "
        f"postgres={len(postgres_rows(env['FOOTPRINT_POSTGRES_URL']))} clickhouse_rows={raw} "
        f"duplicates={raw - distinct} rollup={rollup}"
    )
    assert (raw, distinct, rollup) == (10_000, 10_000, 10_000)
    assert first.alive(), first.tail()
