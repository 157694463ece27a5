"""End to end on real servers: middleware and API in, PostgreSQL, ClickHouse and Redis out."""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from footprint.settings import load_settings
from tests.integration.conftest import (
    BIN,
    admin_headers,
    clickhouse_database_url,
    free_port,
    wait_http,
    wait_until,
)
from tests.integration.traffic import (
    BAD_MESSAGES,
    check_stored,
    consume_all,
    produce_raw,
    through_api,
    through_middleware,
)

pytestmark = pytest.mark.integration


def _settings_from(env: dict[str, str]):  # noqa: ANN202
    return load_settings(**{k.removeprefix("FOOTPRINT_").lower(): v for k, v in env.items()})


def caught_up(api: httpx.Client, total: int) -> dict | None:
    """The stream status once the worker has processed ``total`` events and has no lag."""
    status = api.get("/api/stream/status").json()
    return status if status["lag"] == 0 and status["processed"] >= total else None


def test_footprint_run_end_to_end_on_embedded_clickhouse(env, spawn) -> None:
    """``footprint run`` (API + worker in one process, chdb): 1,000 + 1,000 footprints, exact."""
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "footprint-run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)

    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    sent = through_middleware(env, 1000)
    assert httpx.get(base + "/api/stats/live", timeout=10).status_code == 401  # private
    with httpx.Client(base_url=base, headers=admin_headers(), timeout=30) as api:
        bots: Counter[tuple[str, str]] = Counter()
        sent += through_api(api, 500, bots=bots)
        produce_raw(bootstrap, env["FOOTPRINT_FOOTPRINTS_TOPIC"], BAD_MESSAGES)
        sent += through_api(api, 500, seed=3, bots=bots)
        assert bots, "some crawler traffic"
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent, bots)

        total = sum(sent.values()) + sum(bots.values()) + len(BAD_MESSAGES)
        status = wait_until(lambda: caught_up(api, total), what="lag 0")
        assert status["worker_alive"]
        assert status["dead_lettered"] == len(BAD_MESSAGES)
        anonymous = httpx.get(base + "/api/stream/dead-letters", timeout=10)
        assert anonymous.status_code == 401  # moderators only
        moderator = {"Authorization": f"Bearer {_admin_token(env)}"}
        shown = api.get("/api/stream/dead-letters", params={"limit": 3}, headers=moderator).json()[
            "entries"
        ]
        assert len(shown) == 3
        assert all(e["error"] and e["source"]["offset"] is not None for e in shown)

    dead = consume_all(bootstrap, env["FOOTPRINT_DEAD_LETTER_TOPIC"], len(BAD_MESSAGES))
    assert sorted(r.value for r in dead) == sorted(BAD_MESSAGES), "original bytes kept"
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["source-topic"] == env["FOOTPRINT_FOOTPRINTS_TOPIC"]
        assert int(headers["source-offset"]) >= 0
        assert headers["error"].startswith(("invalid footprint:", "undecodable:"))
    reasons = " | ".join(dict(r.headers)["error"].decode() for r in dead)
    for field in ("link", "event_id", "method", "footprint_time"):
        assert field in reasons, f"the reason names {field}: {reasons}"
        assert {p["partition"] for p in status["partitions"]} == {0, 1, 2, 3}
        assert status["last_error"] is None

    assert proc.stop() == 0, proc.tail()


def test_faust_worker_with_clickhouse_server(env, spawn, clickhouse_server) -> None:
    """``faust -A streams.app worker`` + the API, ClickHouse through the native protocol."""
    env = {
        **env,
        "FOOTPRINT_CLICKHOUSE_URL": clickhouse_database_url(
            clickhouse_server, f"t_{uuid.uuid4().hex[:8]}"
        ),
    }
    subprocess.run(
        [str(BIN / "footprint"), "migrate"], env={**_base_env(), **env}, check=True, timeout=120
    )
    worker = spawn(
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
        "worker",
    )

    app = create_app(_settings_from(env))
    with TestClient(app, headers=admin_headers()) as api:
        sent = through_middleware(env, 500)
        sent += through_api(api, 1000)
        check_stored(api, env["FOOTPRINT_POSTGRES_URL"], sent)
        status = wait_until(lambda: caught_up(api, sum(sent.values())), what="lag 0")
        assert status["worker_alive"]
    assert worker.alive(), worker.tail()


def _admin_token(env: dict[str, str]) -> str:
    from api.auth import mint_token

    return mint_token(_settings_from(env), "moderator", admin=True)


def _base_env() -> dict[str, str]:
    import os

    return dict(os.environ)
