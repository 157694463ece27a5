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
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from clickhouse_driver import Client as ClickHouseClient
from fastapi.testclient import TestClient

from api.main import create_app
from footprint.records import packs, to_record
from footprint.schema import Footprint, pack
from footprint.settings import load_settings
from schemas.community import FollowUser
from tests.integration.conftest import (
    BIN,
    BROKERS,
    Process,
    Servers,
    admin_headers,
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


def produce_reference(bootstrap: str, topic: str, n: int, seconds: float, seed: int = 5) -> Sent:
    """Produce ``n`` footprints over ``seconds`` as the reference site does: confluent-kafka,
    ``{"method", "link", "footprint_time"}`` in KST, no key, no event id."""
    import json
    import random

    from confluent_kafka import Producer

    kst = timezone(timedelta(hours=9))
    rng = random.Random(seed)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent: Sent = Counter()
    rounds = max(1, int(seconds * 20))
    for r in range(rounds):
        for _ in range(n * (r + 1) // rounds - n * r // rounds):
            link = f"/ref/{min(int(rng.paretovariate(1.3)), 20)}"
            when = datetime.now(kst) - timedelta(seconds=rng.uniform(0, 30))
            body = {"method": "GET", "link": link, "footprint_time": when.isoformat()}
            producer.produce(topic, json.dumps(body).encode())
            sent[("GET", link)] += 1
        producer.poll(0)
        time.sleep(seconds / rounds)
    assert producer.flush(60) == 0
    return sent


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


def guard_firings(tmp_path: Path) -> str:
    """How often the worker's ordering guards fired, from every worker log of the test."""
    gaps = stalls = 0
    for log in tmp_path.glob("worker*.log"):
        text = log.read_text(errors="replace")
        gaps += text.count("is the next to write; seeking back (seek 1;")
        stalls += text.count("resuming the partition and seeking")
    return f"gap_guard={gaps} stall_watch={stalls}"


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


@pytest.mark.parametrize("stack", BROKERS, indirect=True)
def test_worker_killed_three_times_mid_stream_stores_each_event_once(
    ch_env, spawn, stack: Servers, tmp_path: Path
) -> None:
    """API packs and the reference site's keyless messages, the worker killed three times."""
    env = ch_env
    migrate(env)
    items, sent = footprints(20_000)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    topic = env["FOOTPRINT_FOOTPRINTS_TOPIC"]
    producer = threading.Thread(
        target=produce,
        args=(bootstrap, topic, items, 20.0, True),  # packed, as the API does
    )
    reference: list[Sent] = []
    third_party = threading.Thread(
        target=lambda: reference.append(produce_reference(bootstrap, topic, 4000, 20.0))
    )
    worker = start_worker(spawn, env, "worker-0")
    producer.start()
    third_party.start()
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
    third_party.join()
    sent += reference[0]
    total = sent.total()

    with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    print(
        f"{stack.broker}: kill -9 x3 (at {stored_at_kill} stored): sent={total} (20000 in "
        f"packs + 4000 keyless reference) postgres="
        f"{len(postgres_rows(env['FOOTPRINT_POSTGRES_URL']))} clickhouse_rows={raw} "
        f"clickhouse_distinct={distinct} rollup={rollup} duplicates={raw - distinct} "
        f"{guard_firings(tmp_path)}"
    )
    assert (raw, distinct, rollup) == (total, total, total)
    assert worker.alive(), worker.tail()


def test_broker_unreachable_for_10s_loses_no_request_and_no_footprint(
    env: dict[str, str], spawn, servers: Servers
) -> None:
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)

    sent = Counter()
    pause_done = threading.Event()
    paused: list[float] = []

    def outage() -> None:
        try:
            time.sleep(1.0)
            servers.kafka.pause()
            began = time.monotonic()
            time.sleep(10.0)
            servers.kafka.resume()
            paused.append(time.monotonic() - began)
        finally:
            pause_done.set()

    threading.Thread(target=outage, daemon=True).start()
    started = time.monotonic()
    # through_middleware asserts every answer (200, or the host app's own 404).
    while not pause_done.is_set() or sent.total() < 2000:
        sent += through_middleware(env, 100, seed=int(time.monotonic() * 1000) % 10_000)
    elapsed = time.monotonic() - started
    assert paused, "the broker was paused"
    with httpx.Client(base_url=base, headers=admin_headers(), timeout=30) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    stored = len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"]))
    print(
        f"{servers.broker} paused {paused[0]:.0f}s: recorded requests={sent.total()} "
        f"stored={stored} lost={sent.total() - stored} in {elapsed:.1f}s"
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

    with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
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


@pytest.mark.parametrize("stack", BROKERS, indirect=True)
def test_two_workers_share_partitions_and_one_killed_mid_stream_keeps_counts_exact(
    ch_env, spawn, stack: Servers, tmp_path: Path
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

    with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    print(
        f"{stack.broker}: two workers, one killed at {killed_at} stored: sent=10000 "
        f"postgres={len(postgres_rows(env['FOOTPRINT_POSTGRES_URL']))} clickhouse_rows={raw} "
        f"duplicates={raw - distinct} rollup={rollup} {guard_firings(tmp_path)}"
    )
    assert (raw, distinct, rollup) == (10_000, 10_000, 10_000)
    assert first.alive(), first.tail()


def produce_follows(bootstrap: str, topic: str, n: int, seconds: float) -> list[bytes]:
    """``n`` follow events (one notification each) keyed by recipient, over ``seconds``."""
    events = [
        FollowUser(actor_id=f"fan-{i}", followed_id=f"star-{i % 40}").to_bytes() for i in range(n)
    ]

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        await producer.start()
        try:
            rounds = max(1, int(seconds * 20))
            for r in range(rounds):
                chunk = events[n * r // rounds : n * (r + 1) // rounds]
                futures = [
                    await producer.send(topic, value, key=f"star-{i % 40}".encode())
                    for i, value in enumerate(chunk, start=n * r // rounds)
                ]
                await asyncio.gather(*futures)
                await asyncio.sleep(seconds / rounds)
        finally:
            await producer.stop()

    asyncio.run(go())
    return events


def notification_rows(url: str) -> tuple[int, int]:
    """Rows in user_notifications and distinct (event, recipient) pairs among them."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            'SELECT count(*), count(DISTINCT (event_id, "user")) FROM user_notifications'
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.parametrize("stack", BROKERS, indirect=True)
def test_notifications_worker_killed_twice_mid_stream_notifies_each_event_once(
    ch_env, spawn, stack: Servers, tmp_path: Path
) -> None:
    env = ch_env
    migrate(env)
    n = 6000
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    producer = threading.Thread(
        target=produce_follows, args=(bootstrap, env["FOOTPRINT_NOTIFICATIONS_TOPIC"], n, 12.0)
    )
    worker = start_worker(spawn, env, "worker-0")
    producer.start()
    killed_at = []
    for kill in range(2):
        floor = notification_rows(env["FOOTPRINT_POSTGRES_URL"])[0]
        wait_until(
            lambda floor=floor: notification_rows(env["FOOTPRINT_POSTGRES_URL"])[0] > floor + 800,
            timeout=120,
            what="notifications stored before the kill",
        )
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        killed_at.append(notification_rows(env["FOOTPRINT_POSTGRES_URL"])[0])
        worker = start_worker(spawn, env, f"worker-{kill + 1}")
    producer.join()
    rows, distinct = wait_until(
        lambda: r if (r := notification_rows(env["FOOTPRINT_POSTGRES_URL"]))[0] >= n else None,
        timeout=120,
        what=f"{n} notifications",
    )
    print(
        f"{stack.broker}: notifications worker kill -9 x2 (at {killed_at} stored): sent={n} "
        f"rows={rows} distinct={distinct} duplicates={rows - distinct} {guard_firings(tmp_path)}"
    )
    assert (rows, distinct) == (n, n)
    assert worker.alive(), worker.tail()
