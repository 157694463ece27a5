"""A footprint a real store refuses is dead-lettered alone; its neighbours are stored and counted.

The poison is real: a link of 2,047 four-byte characters passes the schema (2,048 characters at
most) but is ~8 KB of UTF-8, and PostgreSQL refuses the row for its time index ("index row
requires 8216 bytes, maximum size is 8191", SQLSTATE 54000). Before the worker told refusals
from outages it retried that batch for ever and the partition stalled.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from footprint.schema import Footprint
from tests.integration.conftest import BIN, admin_headers, free_port, wait_http, wait_until
from tests.integration.traffic import check_stored, consume_all, postgres_rows, through_api

pytestmark = pytest.mark.integration


def poison_link(seed: int) -> str:
    rng = random.Random(seed)
    return "/" + "".join(chr(rng.randrange(0x1F300, 0x1FAFF)) for _ in range(2047))


def test_footprints_postgresql_refuses_are_dead_lettered_and_the_rest_flows(env, spawn) -> None:
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "footprint-run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    poison = [poison_link(seed) for seed in range(3)]

    with httpx.Client(base_url=base, timeout=30, headers=admin_headers()) as api:
        sent = through_api(api, 100)
        # The poison in packs among good footprints, as a site's batch would carry it.
        now = datetime.now(UTC).isoformat()
        mixed = [
            {"method": "GET", "link": link, "footprint_time": now}
            for link in ["/a", poison[0], "/b", poison[1], poison[2], "/c"]
        ]
        r = api.post("/api/footprints", json=mixed)
        assert r.status_code == 202 and r.json()["accepted"] == 6, r.text
        sent += Counter({("GET", "/a"): 1, ("GET", "/b"): 1, ("GET", "/c"): 1})
        sent += through_api(api, 100, seed=3)  # later footprints keep flowing

        # Every good one in PostgreSQL, ClickHouse and every live window, exactly once.
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
        assert not any(len(row[2]) > 100 for row in postgres_rows(env["FOOTPRINT_POSTGRES_URL"]))

        def settled() -> dict | None:
            status = api.get("/api/stream/status", headers=admin_headers()).json()
            return status if status["lag"] == 0 and status["dead_lettered"] == 3 else None

        status = wait_until(settled, what="lag 0 and 3 dead letters")
        assert status["stores"] == {"postgres": "ok", "clickhouse": "ok", "redis": "ok"}
        assert status["last_bug"] is None
        refused = [w["failures"]["postgres"]["refused"] for w in status["workers"]]
        assert sum(refused) == 3
        metrics = api.get("/metrics", headers=admin_headers()).text
        assert 'footprint_worker_sink_failures_total{kind="refused",sink="postgres"} 3.0' in metrics

    dead = consume_all(bootstrap, env["FOOTPRINT_DEAD_LETTER_TOPIC"], 3, timeout=20)
    assert len(dead) == 3
    # Each alone, as its own footprint (not the pack it came in), with the store's reason.
    assert sorted(Footprint.from_bytes(r.value).link for r in dead) == sorted(poison)
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["error"].startswith("postgres refused: index row"), headers["error"]
        assert headers["source-topic"] == env["FOOTPRINT_FOOTPRINTS_TOPIC"]
        assert json.loads(record.value)["link"].startswith("/")
    assert proc.stop() == 0, proc.tail()
