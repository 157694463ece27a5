"""Apache Kafka as the production broker: a restart on the same log dirs, and a three-broker
cluster losing the leader of most footprint partitions mid-stream.

Each test prints one figure line: sent / stored / duplicates.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi.testclient import TestClient

from api.main import create_app
from footprint.stack.apache_kafka import KafkaCluster
from tests.integration.conftest import (
    Servers,
    admin_headers,
    clickhouse_database_url,
    make_env,
    wait_until,
)
from tests.integration.test_faults import (
    clickhouse_counts,
    migrate,
    settings_from,
    start_worker,
)
from tests.integration.traffic import Sent, check_stored, postgres_rows, through_api

pytestmark = pytest.mark.integration


def stream_through_api(
    api: TestClient, until: threading.Event, at_least: int
) -> tuple[Sent, Counter]:
    """POST footprints in rounds of 100 until ``until`` is set and ``at_least`` were sent.

    Returns what was sent and the answers' status codes (``through_api`` also asserts each).
    """
    sent: Sent = Counter()
    answers: Counter[int] = Counter()
    api.event_hooks = {"response": [lambda r: answers.update([r.status_code])]}
    rounds = 0
    try:
        while not until.is_set() or sent.total() < at_least:
            sent += through_api(api, 100, seed=rounds)
            rounds += 1
    finally:
        api.event_hooks = {"response": []}
    return sent, answers


def after_progress(
    env: dict[str, str], fault: Callable[[], object]
) -> tuple[threading.Event, list[bool]]:
    """Cause ``fault`` once the worker has stored 1,500 footprints, on a thread of its own.

    The event is set when it is over, also when the worker never got that far (the stream must
    end either way); the list holds True if the fault really happened.
    """
    over, done = threading.Event(), []

    def run() -> None:
        try:
            wait_until(
                lambda: len(postgres_rows(env["FOOTPRINT_POSTGRES_URL"])) > 1500,
                timeout=120,
                what="progress before the fault",
            )
            fault()
            done.append(True)
        finally:
            over.set()

    threading.Thread(target=run, daemon=True).start()
    return over, done


async def _leaders(bootstrap: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return {p["partition"]: p["leader"] for p in described["partitions"]}
    finally:
        await admin.close()


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        await admin.close()


async def _ends(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[KafkaCluster]:
    """A one-node Apache Kafka of this test's own, free to be restarted."""
    cluster = KafkaCluster(tmp_path / "kafka").start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def kafka3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three Apache Kafka nodes: replication factor 3, ``min.insync.replicas=2``."""
    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka3"), size=3, heap="512m").start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _env_on(
    broker: KafkaCluster, servers: Servers, tmp_path: Path, clickhouse: Any
) -> dict[str, str]:
    env = make_env(Servers(broker, servers.postgres, servers.redis), tmp_path)
    return {
        **env,
        "FOOTPRINT_CLICKHOUSE_URL": clickhouse_database_url(
            clickhouse, f"t_{uuid.uuid4().hex[:8]}"
        ),
        "FOOTPRINT_REPLICATION_FACTOR": str(min(3, len(broker.nodes))),
        "FOOTPRINT_SESSION_TIMEOUT": "6",
    }


def test_broker_restarted_mid_stream_keeps_topics_offsets_and_tables(
    own_kafka: KafkaCluster, servers: Servers, clickhouse_server: Any, spawn, tmp_path: Path
) -> None:
    env = _env_on(own_kafka, servers, tmp_path, clickhouse_server)
    migrate(env)
    worker = start_worker(spawn, env, "worker")
    restarted, done = after_progress(env, own_kafka.restart)
    with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
        sent, answers = stream_through_api(api, restarted, 4000)
        assert done, f"no progress before the restart:\n{worker.tail()}"
        assert set(answers) == {202}, answers
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
        producer = api.get("/api/stream/status").json()["producer"]
    assert worker.alive(), worker.tail()

    # The worker came back to the same topics: its group's offsets were kept and reach the end.
    bootstrap = own_kafka.bootstrap
    topic = env["FOOTPRINT_FOOTPRINTS_TOPIC"]
    ends = asyncio.run(_ends(bootstrap, topic, 4))
    committed = wait_until(
        lambda: (
            c
            if (c := asyncio.run(_committed(bootstrap, env["FOOTPRINT_APP_ID"], topic))) == ends
            else None
        ),
        what="committed offsets at the end of every partition",
    )
    # A fresh worker recovers the window tables from their changelogs: counts still exact.
    worker.stop()
    worker = start_worker(spawn, env, "worker-after")
    more = through_api_once(env)
    with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent + more)
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    total = (sent + more).total()
    print(
        f"Apache Kafka restarted mid-stream: sent={total} "
        f"postgres={len(postgres_rows(env['FOOTPRINT_POSTGRES_URL']))} clickhouse_rows={raw} "
        f"duplicates={raw - distinct} rollup={rollup} committed={committed} "
        f"producer failed_sends={producer['failed_sends']} spooled={producer['spooled']} "
        f"last_error={producer['last_error']!r}"
    )
    # The API's producer met the broker gone (and delivered once it was back, above).
    assert producer["failed_sends"] > 0, producer
    assert (raw, distinct, rollup) == (total, total, total)


def through_api_once(env: dict[str, str]) -> Sent:
    """A few more footprints after a worker restart."""
    with TestClient(create_app(settings_from(env))) as api:
        return through_api(api, 200, seed=999)  # type: ignore[arg-type]


def test_three_brokers_leader_killed_mid_stream_loses_nothing(
    kafka3: KafkaCluster, servers: Servers, clickhouse_server: Any, spawn, tmp_path: Path
) -> None:
    env = _env_on(kafka3, servers, tmp_path, clickhouse_server)
    migrate(env)
    topic = env["FOOTPRINT_FOOTPRINTS_TOPIC"]
    leaders = asyncio.run(_leaders(kafka3.bootstrap, topic))
    worker = start_worker(spawn, env, "worker")
    victim_id = Counter(leaders.values()).most_common(1)[0][0]
    victim = kafka3.node_by_id(victim_id)
    killed, done = after_progress(env, victim.kill)
    began = time.monotonic()
    try:
        with TestClient(create_app(settings_from(env)), headers=admin_headers()) as api:
            sent, answers = stream_through_api(api, killed, 5000)
            assert done, f"no progress before the kill:\n{worker.tail()}"
            check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
            producer = api.get("/api/stream/status").json()["producer"]
        after = asyncio.run(_leaders(kafka3.bootstrap, topic))
    finally:
        victim.start()  # the next test gets its three brokers back
    assert set(answers) == {202}, answers
    # The fault took effect: the killed node leads no partition any more.
    assert victim_id not in after.values(), after
    assert worker.alive(), worker.tail()
    raw, distinct, rollup = clickhouse_counts(env["FOOTPRINT_CLICKHOUSE_URL"])
    total = sent.total()
    print(
        f"{len(kafka3.nodes)} brokers, node {victim_id} (leader of "
        f"{list(leaders.values()).count(victim_id)}/{len(leaders)} footprint partitions) killed: "
        f"requests={answers.total()} answers={dict(answers)} "
        f"sent={total} "
        f"postgres={len(postgres_rows(env['FOOTPRINT_POSTGRES_URL']))} clickhouse_rows={raw} "
        f"duplicates={raw - distinct} rollup={rollup} in {time.monotonic() - began:.0f}s; "
        f"leaders after {after}, producer failed_sends={producer['failed_sends']}"
    )
    assert (raw, distinct, rollup) == (total, total, total)
