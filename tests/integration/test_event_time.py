"""The event-time policy with real producers: the API's 422, the worker's dead letters, and
history imported on purpose (kcat with the backfill header, ``footprint backfill``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest

from api.auth import mint_token
from footprint.settings import load_settings
from tests.integration.conftest import BIN, JWT_SECRET, free_port, wait_http, wait_until
from tests.integration.traffic import consume_all

pytestmark = pytest.mark.integration

KST = timezone(timedelta(hours=9))


def _stored(pg_url: str) -> dict[str, int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT link, count(*) FROM user_footprint GROUP BY link").fetchall()
    return {link: n for link, n in rows}


def test_old_footprints_are_refused_unless_imported_as_history(env, spawn, tmp_path) -> None:
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "footprint-run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)
    bootstrap = env["FOOTPRINT_KAFKA_URL"].removeprefix("kafka://")
    topic = env["FOOTPRINT_FOOTPRINTS_TOPIC"]
    now = datetime.now(UTC)
    old = (now - timedelta(days=30)).astimezone(KST).isoformat()
    admin = mint_token(load_settings(jwt_secret=JWT_SECRET), "ops", admin=True)

    with httpx.Client(base_url=base, timeout=30) as api:
        # The API: a clear 422 naming the field (and the item in a list), nothing accepted.
        body = {"method": "GET", "link": "/a", "footprint_time": old}
        one = api.post("/api/footprints", json=body)
        assert one.status_code == 422, one.text
        (error,) = one.json()["detail"]
        assert error["loc"] == ["body", "footprint_time"]
        assert "more than 7 days before it was sent" in error["msg"]
        ahead = (now + timedelta(minutes=3)).isoformat()
        many = api.post(
            "/api/footprints",
            json=[
                {"method": "GET", "link": "/api/recent", "footprint_time": now.isoformat()},
                {"method": "GET", "link": "/api/old", "footprint_time": old},
                {"method": "GET", "link": "/api/ahead", "footprint_time": ahead},
            ],
        )
        assert many.status_code == 422, many.text
        assert [e["loc"] for e in many.json()["detail"]] == [["body", 1, "footprint_time"]]
        six_days = (now - timedelta(days=6)).isoformat()
        ok = api.post(
            "/api/footprints",
            json={"method": "GET", "link": "/api/six-days", "footprint_time": six_days},
        )
        assert ok.status_code == 202, ok.text

        # A third-party producer: the same old footprint is dead-lettered with the reason;
        # with the backfill header it is history, and stored.
        kcat = shutil.which("kcat") or shutil.which("kafkacat")
        assert kcat, "kcat is installed by `make system-deps`"
        line = json.dumps({"method": "GET", "link": "/kcat/old", "footprint_time": old}) + "\n"
        subprocess.run(
            [kcat, "-P", "-b", bootstrap, "-t", topic], input=line.encode(), check=True, timeout=60
        )
        line = json.dumps({"method": "GET", "link": "/kcat/history", "footprint_time": old})
        subprocess.run(
            [kcat, "-P", "-b", bootstrap, "-t", topic, "-H", "footprint-backfill=1"],
            input=(line + "\n").encode(),
            check=True,
            timeout=60,
        )

        # `footprint backfill`: a year of history, one invalid line; twice, stored once.
        dump = tmp_path / "history.jsonl"
        lines = [
            json.dumps(
                {
                    "method": "GET",
                    "link": "/history",
                    "footprint_time": (now - timedelta(days=30 * m + 1)).isoformat(),
                }
            )
            for m in range(12)
        ]
        lines.insert(5, json.dumps({"method": "GET", "link": "no-slash"}))
        dump.write_text("\n".join(lines) + "\n")
        for _ in range(2):
            run = subprocess.run(
                [str(BIN / "footprint"), "backfill", str(dump)],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert run.returncode == 1, run.stderr
            assert "line 6: link:" in run.stderr, run.stderr
            assert "sent 12 footprints" in run.stderr, run.stderr

        want = {"/api/six-days": 1, "/kcat/history": 1, "/history": 12}
        pg = env["FOOTPRINT_POSTGRES_URL"]
        wait_until(lambda: _stored(pg) == want, timeout=90, what=f"stored {want}")

        letters = consume_all(bootstrap, env["FOOTPRINT_DEAD_LETTER_TOPIC"], want=1, timeout=30)
        assert len(letters) == 1
        headers = dict(letters[0].headers)
        assert json.loads(letters[0].value)["link"] == "/kcat/old"
        assert b"footprint_time: more than 7 days before it was sent" in headers["error"]

        # Every message of both imports processed (the group's lag is 0), still each stored once.
        # The worker's counters come in its heartbeat (every 2 s), which may predate the commit
        # that ended the lag: wait for one that counts the dead letter, then check it is one.
        def settled() -> dict | None:
            s = api.get("/api/stream/status", headers={"Authorization": f"Bearer {admin}"}).json()
            parts = [p for p in s["partitions"] if p["topic"] == topic]
            caught_up = parts and all(p["lag"] == 0 for p in parts)
            return s if caught_up and s["dead_lettered"] >= 1 else None

        status = wait_until(settled, timeout=120, what="every message committed")
        assert status["dead_lettered"] == 1
        assert _stored(pg) == want
    assert proc.stop() == 0, proc.tail()


def test_backfill_needs_a_file_or_stdin(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(BIN / "footprint"), "backfill", str(tmp_path / "missing.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "missing.jsonl" in run.stderr
