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
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from footprint.records import packs, to_record
from footprint.schema import Footprint, pack
from footprint.settings import load_settings
from footprint.spool import Spool
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


OUTAGE = 10.0  # seconds a server is down: the fault itself, so a fixed length


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
    packed, keyless = sent.total(), reference[0].total()
    sent += reference[0]
    total = sent.total()

    with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    print(
        f"{stack.broker}: kill -9 x3 (at {stored_at_kill} stored): sent={total} ({packed} in "
        f"packs + {keyless} keyless reference) postgres="
        f"{len(postgres_rows(env['FOOTPRINT_POSTGRES_URL']))} clickhouse_rows={raw} "
        f"clickhouse_distinct={distinct} rollup={rollup} duplicates={raw - distinct} "
        f"{guard_firings(tmp_path)}"
    )
    assert max(stored_at_kill) < total, "every kill came before everything was stored"
    assert (raw, distinct, rollup) == (total, total, total)
    assert worker.alive(), worker.tail()


def test_broker_unreachable_for_10s_loses_no_request_and_no_footprint(
    env: dict[str, str], spawn, servers: Servers
) -> None:
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)
    # Where the host app's middleware keeps footprints the broker did not take (see
    # through_middleware): what waits there was seen undeliverable.
    spool = Path(env["FOOTPRINT_DATA_DIR"] + "-host") / "spool"

    sent = Counter()
    flowing, pause_done = threading.Event(), threading.Event()
    paused: list[float] = []

    def outage() -> None:
        try:
            flowing.wait(60)
            servers.kafka.pause()
            began = time.monotonic()
            time.sleep(OUTAGE)  # the outage itself: a fixed length
            servers.kafka.resume()
            paused.append(time.monotonic() - began)
        finally:
            pause_done.set()

    threading.Thread(target=outage, daemon=True).start()
    started = time.monotonic()
    most_spooled = 0
    # through_middleware asserts every answer (200, or the host app's own 404).
    while not pause_done.is_set() or sent.total() < 2000:
        sent += through_middleware(env, 100, seed=int(time.monotonic() * 1000) % 10_000)
        flowing.set()
        most_spooled = max(most_spooled, Spool(spool).count)
    elapsed = time.monotonic() - started
    assert paused, "the broker was paused"
    with httpx.Client(base_url=base, headers=admin_headers(), timeout=30) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    stored = len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"]))
    print(
        f"{servers.broker} paused {paused[0]:.0f}s: recorded requests={sent.total()} "
        f"spooled at most={most_spooled} stored={stored} lost={sent.total() - stored} "
        f"in {elapsed:.1f}s"
    )
    assert most_spooled > 0, "footprints waited on disk: the middleware saw the broker gone"


def worker_metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A worker's ``/metrics`` (``FOOTPRINT_WORKER_METRICS_PORT``): value by name and labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def stored_by(port: int) -> int:
    """Footprints the worker behind ``port`` has written to every store."""
    return int(worker_metrics(port)[("footprint_worker_events_stored_total", frozenset())])


def sink_metrics(port: int, store: str) -> tuple[str | None, int]:
    """The store's state (ok, unavailable, bug) and failed attempts, from the worker's /metrics."""
    metrics = worker_metrics(port)
    states = [
        state
        for state in ("ok", "unavailable", "bug")
        if metrics.get(
            ("footprint_worker_sink_state", frozenset({("sink", store), ("state", state)}))
        )
    ]
    failures = metrics.get(
        (
            "footprint_worker_sink_failures_total",
            frozenset({("sink", store), ("kind", "unavailable")}),
        ),
        0,
    )
    return (states[0] if states else None), int(failures)


@pytest.mark.parametrize("store", ["postgres", "clickhouse", "redis"])
def test_a_store_down_for_10s_is_seen_failing_then_recovers_and_loses_nothing(
    store: str, ch_env, spawn, servers: Servers, clickhouse_server: Any
) -> None:
    metrics_port = free_port()
    env = {
        **ch_env,
        # The driver's own timeouts (300 s to receive by default) must be shorter than the
        # outage, or the worker just waits for the store to come back and sees no failure.
        # A write meets up to three of them (the insert, the driver's reconnect, a new client).
        "FOOTPRINT_CLICKHOUSE_URL": ch_env["FOOTPRINT_CLICKHOUSE_URL"]
        + "?send_receive_timeout=1&connect_timeout=1",
        "FOOTPRINT_WORKER_METRICS_PORT": str(metrics_port),
    }
    migrate(env)
    worker = start_worker(spawn, env, "worker")
    items, sent = footprints(6000, seed=11)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    # ClickHouse and Redis are paused (SIGSTOP: connections hang, as in a network outage) and
    # the worker's driver timeouts (1 s, 5 s) turn the hang into failures. The PostgreSQL sink
    # waits 30 s for an answer, longer than the outage: PostgreSQL is stopped instead, so its
    # connections are refused (a crash rather than a hang).
    fault, down, up = {
        "postgres": ("stopped", servers.postgres.stop, servers.postgres.start),
        "clickhouse": ("paused", clickhouse_server.pause, clickhouse_server.resume),
        "redis": ("paused", servers.redis.pause, servers.redis.resume),
    }[store]

    producer = threading.Thread(
        target=produce, args=(bootstrap, env["FOOTPRINT_FOOTPRINTS_TOPIC"], items, 15.0)
    )
    producer.start()
    wait_until(
        lambda: len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"])) > 500,
        timeout=60,
        what="the worker storing before the outage",
    )
    before = sink_metrics(metrics_port, store)
    began = time.monotonic()
    down()
    try:
        wait_until(
            lambda: sink_metrics(metrics_port, store)[0] == "unavailable",
            timeout=OUTAGE - 1,
            interval=0.1,
            what=f"the worker seeing {store} unavailable",
        )
        noticed = time.monotonic() - began
        time.sleep(max(0.0, began + OUTAGE - time.monotonic()))  # the rest of the outage
    finally:
        up()
    ended = time.monotonic()
    state, failures = wait_until(
        lambda: m if (m := sink_metrics(metrics_port, store))[0] == "ok" else None,
        timeout=30,
        interval=0.1,
        what=f"the worker writing to {store} again",
    )
    recovered = time.monotonic() - ended
    producer.join()

    with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
        # The API tells the same from the worker's heartbeat (published every few seconds).
        status = wait_until(
            lambda: (
                s if (s := api.get("/api/stream/status").json())["stores"][store] == "ok" else None
            ),
            timeout=15,
            what=f"/api/stream/status showing {store} ok",
        )
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    stored = len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"]))
    print(
        f"{store} {fault} {ended - began:.1f}s: worker saw it after {noticed:.1f}s, "
        f"{failures - before[1]} failed attempts, writing again {recovered:.1f}s after; "
        f"sent={len(items)} postgres={stored} clickhouse_rows={raw} "
        f"duplicates={raw - distinct} rollup={rollup} last_error={status['last_error']!r}"
    )
    assert before[0] == "ok", "the store was up and written to before the outage"
    assert failures > 0 and state == "ok"
    assert status["workers"][0]["failures"][store]["unavailable"] > 0, status["workers"]
    assert (raw, distinct, rollup) == (len(items),) * 3
    assert worker.alive(), worker.tail()


@pytest.mark.parametrize("stack", BROKERS, indirect=True)
def test_two_workers_share_partitions_and_one_killed_mid_stream_keeps_counts_exact(
    ch_env, spawn, stack: Servers, tmp_path: Path
) -> None:
    env = ch_env
    migrate(env)
    items, sent = footprints(10_000, seed=21)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    ports = free_port(), free_port()
    first, second = (
        start_worker(spawn, {**env, "FOOTPRINT_WORKER_METRICS_PORT": str(port)}, name)
        for port, name in zip(ports, ("worker-a", "worker-b"), strict=True)
    )
    producer = threading.Thread(
        target=produce, args=(bootstrap, env["FOOTPRINT_FOOTPRINTS_TOPIC"], items, 15.0)
    )
    producer.start()
    # Each worker stores its own partitions' footprints: both must be under way before the kill.
    shares = wait_until(
        lambda: s if min(s := [stored_by(port) for port in ports]) > 200 else None,
        timeout=120,
        what="both workers storing",
    )
    os.killpg(second.proc.pid, signal.SIGKILL)
    second.proc.wait()
    killed_at = len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"]))
    producer.join()

    with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    print(
        f"{stack.broker}: two workers (stored {shares} each), one killed at {killed_at} "
        f"stored: sent={len(items)} "
        f"postgres={len(postgres_rows(env['FOOTPRINT_POSTGRES_URL']))} clickhouse_rows={raw} "
        f"duplicates={raw - distinct} rollup={rollup} {guard_firings(tmp_path)}"
    )
    assert killed_at < len(items), "killed mid-stream, before everything was stored"
    assert (raw, distinct, rollup) == (len(items),) * 3
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
    # Produced over 24 s: the restarted worker (~8 s to start) must still have a stream to be
    # killed in; over 12 s it caught up in two batches and the second kill came after the end.
    producer = threading.Thread(
        target=produce_follows, args=(bootstrap, env["FOOTPRINT_NOTIFICATIONS_TOPIC"], n, 24.0)
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
    assert max(killed_at) < n, "every kill came before every notification was stored"
    assert (rows, distinct) == (n, n)
    assert worker.alive(), worker.tail()
