"""``footprint generate`` against ``footprint run``: every page view is stored, actions notify."""

from __future__ import annotations

import os
import subprocess

import httpx
import psycopg
import pytest

from tests.integration.conftest import BIN, admin_headers, free_port, wait_http, wait_until

pytestmark = pytest.mark.integration

COUNT = 300


def stored(url: str) -> tuple[int, int, int]:
    """Rows of generated page views, of all footprints, and of footprints by people."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE link NOT LIKE '/api/%%'), count(*), "
            "count(*) FILTER (WHERE NOT is_bot) FROM user_footprint"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def notifications(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM user_notifications").fetchone()
    assert row is not None
    return row[0]


def test_generate_sends_page_views_and_actions_that_notify(env, spawn) -> None:
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)

    done = subprocess.run(
        [str(BIN / "footprint"), "generate", "--count", str(COUNT), "--seed", "1", "--api", base],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{COUNT} sent, {COUNT} accepted, 0 failed" in done.stdout, done.stdout

    pg = env["FOOTPRINT_POSTGRES_URL"]
    # The community API's own requests are footprints too (under /api/): only ours are counted.
    wait_until(lambda: stored(pg)[0] == COUNT, what=f"{COUNT} page views in PostgreSQL")

    def summary_agrees() -> int | None:
        _, everything, people = stored(pg)
        r = httpx.get(
            base + "/api/stats/summary",
            params={"source": "postgres"},
            headers=admin_headers(),
            timeout=30,
        )
        total = r.json()["total"]
        # Bots may be left out of visit counts: either way the API shows what was stored.
        return total if total in (everything, people) else None

    total = wait_until(summary_agrees, what="the summary to show the stored footprints")
    assert total >= COUNT * 0.8, "the generated page views are visible on the dashboard"
    assert wait_until(lambda: notifications(pg), what="notifications from the actions") > 0
    assert proc.stop() == 0, proc.tail()
