"""Producers nobody here wrote: confluent-kafka as the reference site uses it, and kcat.

The reference site publishes ``{"method", "link", "footprint_time"}`` (KST) with no key and no
event id. Footprint must store and count every such footprint exactly, mixed with keyed
messages (librdkafka's default partitioner and murmur2) and the API's own packs.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import httpx
import psycopg
import pytest
from confluent_kafka import Producer

from schemas.community import FollowUser
from tests.integration.conftest import BIN, admin_headers, free_port, wait_http, wait_until
from tests.integration.traffic import Sent, check_stored, through_api

pytestmark = pytest.mark.integration

KST = timezone(timedelta(hours=9))
LINKS = ["/posts/1", "/posts/2", "/wiki/Main_Page"]


def reference_site(
    bootstrap: str, topic: str, n: int, *, seed: int, keyed: bool = False, **config: str
) -> Sent:
    """Publish ``n`` footprints as the reference site's confluent-kafka producer does
    (``keyed``: with the link as the key, which the reference site does not do)."""
    producer = Producer({"bootstrap.servers": bootstrap, **config})
    rng = random.Random(seed)
    sent: Sent = Counter()
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    now = datetime.now(KST)
    for _ in range(n):
        link = rng.choice(LINKS)
        value = {
            "method": "GET",
            "link": link,
            "footprint_time": (now - timedelta(seconds=rng.uniform(0, 20))).isoformat(),
        }
        producer.produce(
            topic,
            json.dumps(value).encode(),
            key=link.encode() if keyed else None,
            on_delivery=delivered,
        )
        producer.poll(0)
        sent[("GET", link)] += 1
    assert producer.flush(30) == 0
    assert not failures, failures
    return sent


def partitions_used(bootstrap: str, topic: str) -> dict[str, set[int]]:
    """Which partitions each link's messages landed on (read back with confluent-kafka)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{random.getrandbits(32)}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: dict[str, set[int]] = {}
    idle = 0
    try:
        while idle < 5:
            messages = consumer.consume(1000, timeout=1.0)
            idle = 0 if messages else idle + 1
            for m in messages:
                if m.error() is None:
                    body = json.loads(m.value())
                    for item in body if isinstance(body, list) else [body]:
                        seen.setdefault(item["link"], set()).add(m.partition())
    finally:
        consumer.close()
    return seen


def test_third_party_producers_are_counted_exactly(env, spawn) -> None:
    """confluent-kafka (no key; default and murmur2 partitioners) + kcat + the API, exact."""
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "footprint-run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    topic = env["FOOTPRINT_FOOTPRINTS_TOPIC"]

    # Exactly as the reference site: no key, librdkafka's defaults.
    sent = reference_site(bootstrap, topic, 1500, seed=1)
    # Keyed by link with librdkafka's default partitioner (CRC32), then Java's murmur2.
    sent += reference_site(bootstrap, topic, 600, seed=2, keyed=True)
    sent += reference_site(bootstrap, topic, 600, seed=3, keyed=True, partitioner="murmur2_random")

    # A line of JSON from the shell; the second has no time: the message's timestamp counts.
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat, "kcat is installed by `make system-deps`"
    lines = (
        json.dumps({"method": "GET", "link": "/from/kcat", "footprint_time": _kst_now()})
        + "\n"
        + json.dumps({"method": "post", "link": "/from/kcat"})
        + "\n"
    )
    before = datetime.now(UTC)
    subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic], input=lines.encode(), check=True, timeout=60
    )
    after = datetime.now(UTC)
    sent[("GET", "/from/kcat")] += 1
    sent[("POST", "/from/kcat")] += 1

    spread = partitions_used(bootstrap, topic)
    assert any(len(parts) > 1 for parts in spread.values()), f"links on one partition: {spread}"

    with httpx.Client(base_url=base, headers=admin_headers(), timeout=30) as api:
        sent += through_api(api, 300, seed=4)
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
        status = api.get("/api/stream/status").json()
        assert status["dead_lettered"] == 0

    with psycopg.connect(env["FOOTPRINT_POSTGRES_URL"]) as conn:
        (stamped,) = conn.execute(
            "SELECT footprint_time FROM user_footprint WHERE method = 'POST' AND link = %s",
            ("/from/kcat",),
        ).fetchone()
        versions = Counter(
            row[0]
            for row in conn.execute(
                "SELECT substr(event_id::text, 15, 1) FROM user_footprint WHERE link <> ALL(%s)",
                ([f"/articles/{i}" for i in range(40)],),
            )
        )
    assert before - timedelta(seconds=1) <= stamped <= after + timedelta(seconds=1)
    # Every footprint without an id got one derived from its message (UUIDv8).
    assert versions == {"8": 1500 + 600 + 600 + 2}
    assert proc.stop() == 0, proc.tail()


def test_third_party_producers_notify_each_recipient_once(env, spawn) -> None:
    """Community events from confluent-kafka (no key, then keyed by recipient with murmur2,
    lingering so that records arrive in multi-record batches) and from kcat: each notifies its
    recipient once."""
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "footprint-run")
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    topic = env["FOOTPRINT_NOTIFICATIONS_TOPIC"]

    events = [FollowUser(actor_id=f"fan-{i}", followed_id=f"star-{i % 30}") for i in range(900)]
    failures: list[str] = []
    for part, config in (
        (events[:300], {}),
        (events[300:600], {"linger.ms": "20"}),
        (events[600:850], {"linger.ms": "20", "partitioner": "murmur2_random"}),
    ):
        producer = Producer({"bootstrap.servers": bootstrap, **config})
        for event in part:
            producer.produce(
                topic,
                event.to_bytes(),
                key=event.followed_id.encode() if config else None,
                on_delivery=lambda err, _msg: failures.append(str(err)) if err else None,
            )
            producer.poll(0)
        assert producer.flush(30) == 0
    assert not failures, failures
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    assert kcat, "kcat is installed by `make system-deps`"
    lines = "".join(event.model_dump_json() + "\n" for event in events[850:])
    subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic], input=lines.encode(), check=True, timeout=60
    )

    def notified() -> list[tuple[str, str]]:
        with psycopg.connect(env["FOOTPRINT_POSTGRES_URL"]) as conn:
            return [
                (str(event_id), user)
                for event_id, user in conn.execute(
                    'SELECT event_id, "user" FROM user_notifications'
                )
            ]

    wait_until(lambda: len(notified()) >= len(events), timeout=120, what="every notification")
    rows = notified()
    assert sorted(rows) == sorted((str(e.event_id), e.followed_id) for e in events)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=admin_headers()) as api:
        assert api.get("/api/stream/status").json()["dead_lettered"] == 0
    assert proc.stop() == 0, proc.tail()


def _kst_now() -> str:
    return datetime.now(KST).isoformat()
