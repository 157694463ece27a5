"""The community events' outbox on real servers: nothing from a rolled-back action, nothing lost
while the broker is down, nothing twice with two API processes relaying one outbox.

One ``footprint run`` process (API, relay and worker) serves the module; each test uses its own
users. The two-relay test starts a second API process on the same PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from api.auth import mint_token
from api.outbox import enqueue
from footprint.kafka_admin import true_end_offsets
from footprint.settings import load_settings
from schemas.community import PenaltyUser
from tests.integration.conftest import (
    BIN,
    JWT_SECRET,
    Process,
    Served,
    Servers,
    admin_headers,
    footprint_run,
    free_port,
    make_env,
    stream_status,
    wait_http,
    wait_until,
)

pytestmark = pytest.mark.integration

SETTINGS = load_settings(jwt_secret=JWT_SECRET)


@dataclass
class Api:
    base: str

    def client(self, user: str, *, admin: bool = False) -> httpx.Client:
        tok = mint_token(SETTINGS, user, admin=admin)
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {tok}"}, timeout=30
        )

    def status(self) -> dict[str, Any]:
        return stream_status(self.base)

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.base + "/metrics", headers=admin_headers(), timeout=10).text
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


@dataclass
class Running(Served):
    env: dict[str, str]
    api: Api
    proc: Process

    @property
    def topic(self) -> str:
        return self.env["FOOTPRINT_NOTIFICATIONS_TOPIC"]

    def settled(self) -> bool:
        """The outbox is empty and the worker has consumed every notification event."""
        status = self.api.status()
        parts = [p for p in status["partitions"] if p["topic"] == self.topic]
        outbox = status["outbox"]
        return bool(outbox and outbox["backlog"] == 0 and parts) and all(
            p["lag"] == 0 for p in parts
        )


@pytest.fixture(scope="module")
def app(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("outbox")
    env = make_env(servers, tmp)
    # Short enough that a test sees attempts fail and the retry succeed within seconds.
    env["FOOTPRINT_NOTIFICATION_PUBLISH_TIMEOUT"] = "1.5"
    env["FOOTPRINT_OUTBOX_RETRY_MAX_SECONDS"] = "1"
    # Far beyond every wait below: only a wake-up (in-process or NOTIFY) can explain a delivery.
    env["FOOTPRINT_OUTBOX_POLL_SECONDS"] = "120"
    with footprint_run(env, tmp / "run.log") as (base, proc):
        yield Running(env, Api(base), proc)


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def rows(app: Running, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(app.pg) as conn:
        return conn.execute(sql, params).fetchall()


def topic_events(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every event on the topic, in order per partition."""

    async def go() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            metadata = await consumer._client.fetch_all_metadata()  # noqa: SLF001
            parts = sorted(metadata.partitions_for_topic(topic) or [])
            tps = [TopicPartition(topic, p) for p in parts]
            ends = await true_end_offsets(bootstrap, tps)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            out: dict[int, list[dict[str, Any]]] = {p: [] for p in parts}
            async with asyncio.timeout(30):
                while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                    for tp, records in (await consumer.getmany(*tps, timeout_ms=500)).items():
                        out[tp.partition] += [json.loads(r.value) for r in records]
            return [e for p in parts for e in out[p]]
        finally:
            await consumer.stop()

    return asyncio.run(go())


def test_an_action_that_rolls_back_after_writing_its_event_publishes_nothing(
    app: Running,
) -> None:
    doomed, bob, marker = uid("doomed"), uid("bob"), uid("marker")
    # The transaction fails at COMMIT, after the action and its outbox row were written: the
    # latest moment a failure can come, and the one where publishing early would already have
    # sent the event.
    with psycopg.connect(app.pg, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION fail_doomed() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF convert_from(NEW.key, 'UTF8') LIKE 'doomed-%' THEN "
            "RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER fail_doomed AFTER INSERT ON outbox "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_doomed()"
        )
    try:
        with app.api.client(doomed) as d, app.api.client(marker) as m, app.api.client(bob) as b:
            assert d.post(f"/api/users/{bob}/follow").status_code == 503
            assert d.post("/api/posts", json={"title": "never"}).status_code == 503
            # A later action that commits: once bob has it, the relay has run past the failure.
            assert m.post(f"/api/users/{bob}/follow").status_code == 201
            inbox = wait_until(
                lambda: b.get("/api/notifications").json()["items"], timeout=30, what="bob's inbox"
            )
            wait_until(app.settled, timeout=30, what="outbox and topic drained")
            assert [(n["noti_type"], n["payload"]["actor_id"]) for n in inbox] == [
                ("follow_user", marker)
            ], "bob is not told of a follow that does not exist"
    finally:
        with psycopg.connect(app.pg, autocommit=True) as conn:
            conn.execute("DROP TRIGGER fail_doomed ON outbox")
    assert rows(app, "SELECT count(*) FROM follows WHERE follower_id = %s", doomed) == [(0,)]
    assert rows(app, "SELECT count(*) FROM posts WHERE author_id = %s", doomed) == [(0,)]
    actors = {e["actor_id"] for e in topic_events(app.bootstrap, app.topic)}
    assert marker in actors and doomed not in actors


def test_an_event_a_host_app_commits_to_the_outbox_is_delivered_at_once(app: Running) -> None:
    mod, victim = uid("hostmod"), uid("hostvictim")
    event = PenaltyUser(actor_id=mod, user_id=victim, reason="from the host's transaction")

    async def host() -> float:
        # Another process than the API: its commit reaches the relay through NOTIFY alone.
        async with await psycopg.AsyncConnection.connect(app.pg) as conn:
            async with conn.transaction():
                await conn.execute("INSERT INTO users (id) VALUES (%s), (%s)", (mod, victim))
                await enqueue(conn, app.topic, event)
            return time.monotonic()

    committed = asyncio.run(host())
    with app.api.client(victim) as v:
        inbox = wait_until(
            lambda: v.get("/api/notifications").json()["items"], timeout=20, what="the inbox"
        )
    latency = time.monotonic() - committed
    print(f"host app commit to inbox: {latency:.2f}s")
    assert [n["payload"]["event_id"] for n in inbox] == [str(event.event_id)]
    assert latency < 10, "woken by NOTIFY, not by the 120 s poll"


def test_actions_succeed_while_the_broker_is_down_and_are_delivered_once_when_it_is_back(
    app: Running, servers: Servers
) -> None:
    victim, mod, fans = uid("victim"), uid("mod"), [uid("fan") for _ in range(5)]
    before = app.api.metrics()
    event_ids: list[str] = []
    slowest = 0.0
    # SIGSTOP: connections to the broker hang, as in a network outage. Shorter than the worker's
    # session timeout (10 s), so the worker keeps its partitions and only the relay is tested.
    servers.kafka.pause()
    try:
        with app.api.client(mod, admin=True) as m:
            for i in range(10):
                started = time.monotonic()
                r = m.post("/api/admin/penalties", json={"user_id": victim, "reason": f"r{i}"})
                slowest = max(slowest, time.monotonic() - started)
                assert r.status_code == 201, r.text
                event_ids.append(r.json()["event_id"])
        for fan in fans:
            with app.api.client(fan) as f:
                r = f.post(f"/api/users/{victim}/follow")
                assert r.status_code == 201, r.text
                event_ids.append(r.json()["event_id"])
        during = app.api.metrics()
        # The relay tried and failed at least once: the rows stayed for the retry.
        wait_until(
            lambda: (
                app.api.metrics()["footprint_api_outbox_failed_attempts_total"]
                > before["footprint_api_outbox_failed_attempts_total"]
            ),
            timeout=10,
            what="a failed publish attempt",
        )
        waiting = app.api.metrics()
    finally:
        servers.kafka.resume()
    print(f"broker down: {len(event_ids)} actions, slowest answer {slowest:.3f}s")
    assert slowest < 1.0, "an action does not wait for the broker"
    assert during["footprint_api_outbox_backlog"] == 15
    assert waiting["footprint_api_outbox_backlog"] == 15
    assert waiting["footprint_api_outbox_oldest_age_seconds"] > 0

    with app.api.client(victim) as v:
        wait_until(
            lambda: len(v.get("/api/notifications", params={"limit": 50}).json()["items"]) >= 15,
            timeout=30,
            what="15 notifications in the victim's inbox",
        )
        wait_until(app.settled, timeout=30, what="outbox and topic drained")
        inbox = v.get("/api/notifications", params={"limit": 50}).json()["items"]
    assert Counter(n["noti_type"] for n in inbox) == {"penalty_user": 10, "follow_user": 5}
    stored = rows(app, 'SELECT event_id::text FROM user_notifications WHERE "user" = %s', victim)
    assert sorted(e for (e,) in stored) == sorted(event_ids), "each action once, none twice"
    after = app.api.metrics()
    assert after["footprint_api_outbox_backlog"] == 0
    assert after["footprint_api_outbox_oldest_age_seconds"] == 0


def test_two_api_processes_relaying_one_outbox_publish_each_event_once_in_order(
    app: Running, spawn: Callable[..., Process], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **app.env,
        "FOOTPRINT_EMBEDDED_WORKER": "false",
        # chdb belongs to one process per data path: the second API opens its own.
        "FOOTPRINT_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "FOOTPRINT_DATA_DIR": str(tmp_path / "data"),
    }
    second = spawn(
        [str(BIN / "uvicorn"), "api.main:app", "--port", str(port), "--log-level", "warning"],
        env,
        "api2",
    )
    wait_http(f"http://127.0.0.1:{port}/health", second)
    apis = [app.api, Api(f"http://127.0.0.1:{port}")]
    mods = [uid("mod") for _ in range(4)]
    victim = uid("target")
    published_before = [a.status()["outbox"]["relay"]["published"] for a in apis]

    def act(mod: str) -> list[str]:
        # One moderator's actions one after the other, alternating between the two APIs: the
        # order they were made in is the order their key must have on the topic.
        clients = [a.client(mod, admin=True) for a in apis]
        ids = []
        for i in range(40):
            r = clients[i % 2].post(
                "/api/admin/penalties", json={"user_id": victim, "reason": f"{mod} {i}"}
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["event_id"])
        for c in clients:
            c.close()
        return ids

    with ThreadPoolExecutor(len(mods)) as pool:
        made = dict(zip(mods, pool.map(act, mods), strict=True))
    wait_until(app.settled, timeout=30, what="outbox and topic drained")

    events = [e for e in topic_events(app.bootstrap, app.topic) if e["actor_id"] in made]
    copies = Counter(e["event_id"] for e in events)
    assert len(copies) == 160 and set(copies.values()) == {1}, "every event once on the topic"
    for mod, ids in made.items():
        assert [e["event_id"] for e in events if e["actor_id"] == mod] == ids, mod
    published = [a.status()["outbox"]["relay"]["published"] for a in apis]
    shares = [now - was for now, was in zip(published, published_before, strict=True)]
    print(f"two relays: {shares} events published by each")
    assert sum(shares) == 160 and min(shares) > 0, "both relays took part"
    assert rows(app, 'SELECT count(*) FROM user_notifications WHERE "user" = %s', victim) == [
        (160,)
    ]
