"""Sites, keys and shared links through the real app on a real PostgreSQL.

The lifespan is reduced to what these routes use (the PostgreSQL pool and the sites registry):
no broker, so accepted footprints stay in the producer's buffer, where they are counted. The
stats read come from footprints written by the worker's PostgreSQL sink. ``footprint sites add``
runs as a separate process against a second API process (uvicorn) on the same database, so the
key it prints reaches the first process through the registry's refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool
from starlette.websockets import WebSocketDisconnect

from api.auth import mint_token
from api.main import create_app
from footprint.cli.goals import main as goals_cli
from footprint.migrate import apply_postgres
from footprint.retention import site_days
from footprint.schema import Footprint
from footprint.settings import Settings, load_settings
from footprint.stack import PostgresServer, RedisServer
from streams.sinks.base import Batch
from streams.sinks.postgres import PostgresSink
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

JWT_SECRET = "sites-tests-secret-0123456789abcdef0123"
A, B = "a.example", "b.example"
NOW = datetime.now(UTC)


@asynccontextmanager
async def registry_only(app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan, reduced to the PostgreSQL pool and the sites registry."""
    settings: Settings = app.state.settings
    async with AsyncConnectionPool(
        settings.require("postgres_url"), min_size=1, max_size=2, kwargs={"autocommit": True}
    ) as pool:
        app.state.postgres = pool
        app.state.clickhouse = None  # asked of every stats route, used by source=clickhouse only
        await app.state.sites.start(pool)
        try:
            yield
        finally:
            await app.state.sites.stop()


def _fp(site: str, link: str, minutes_ago: int) -> Footprint:
    return Footprint(
        event_id=uuid.uuid4(),
        method="GET",
        link=link,
        footprint_time=NOW - timedelta(minutes=minutes_ago),
        visitor_id=f"v-{site}-{minutes_ago}",
        site=site,
    )


@pytest.fixture(scope="module")
def settings(
    stores: tuple[PostgresServer, RedisServer], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    postgres, redis = stores
    database = f"s_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    settings = load_settings(
        postgres_url=postgres.url_for(database),
        clickhouse_url="clickhouse://127.0.0.1:9/unused",  # the routes here read PostgreSQL
        redis_url=redis.url,
        kafka_url="kafka://127.0.0.1:9",  # never started: footprints stay in the buffer
        jwt_secret=JWT_SECRET,
        data_dir=str(tmp_path_factory.mktemp("data")),
        auto_register_sites=False,
        sites_refresh_seconds=0.3,
    )
    apply_postgres(settings.require("postgres_url"))
    data = [_fp(A, "/a-home", 10), _fp(A, "/a-docs", 20), _fp(B, "/b-secret", 15)]

    async def store() -> None:
        sink = PostgresSink(settings.require("postgres_url"))
        await sink.write(Batch(footprints=data))
        await sink.close()

    asyncio.run(store())
    return settings


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(settings)
    app.router.lifespan_context = registry_only
    admin = {"Authorization": f"Bearer {mint_token(settings, 'owner', admin=True)}"}
    with TestClient(app) as client:
        yield client, admin


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _query(site: str) -> dict[str, Any]:
    return {"site_id": site, "metrics": ["pageviews"], "date_range": "day"}


def test_a_sites_key_reads_that_site_only(api: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = api
    r = client.post("/api/v1/sites", json={"domain": " A.Example "}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["domain"] == A
    key_a = r.json()["api_key"]
    assert key_a.startswith("fp_")
    assert client.post("/api/v1/sites", json={"domain": B}, headers=admin).status_code == 201
    again = client.post("/api/v1/sites", json={"domain": "a.example"}, headers=admin)
    assert again.status_code == 409 and "already registered" in again.json()["detail"]

    listed = client.get("/api/v1/sites", headers=admin).json()["sites"]
    assert [(s["domain"], s["keys"]) for s in listed] == [(A, 1), (B, 1)]
    assert key_a not in str(listed)

    # Ingest for both registered sites is accepted.
    for site in (A, B):
        body = {"method": "GET", "link": "/x", "site": site}
        assert client.post("/api/footprints", json=body).status_code == 202

    mine = client.post("/api/v2/query?source=postgres", json=_query(A), headers=_bearer(key_a))
    assert mine.status_code == 200, mine.text
    assert mine.json()["results"] == [{"metrics": [2], "dimensions": []}]
    theirs = client.post("/api/v2/query?source=postgres", json=_query(B), headers=_bearer(key_a))
    nowhere = client.post(
        "/api/v2/query?source=postgres", json=_query("nowhere.example"), headers=_bearer(key_a)
    )
    # Another site and one that does not exist answer alike: B's existence is not revealed.
    assert theirs.status_code == nowhere.status_code == 404
    assert theirs.json()["error"].startswith("site_id:")
    assert "b-secret" not in theirs.text
    # An admin reads every site.
    b_admin = client.post("/api/v2/query?source=postgres", json=_query(B), headers=admin)
    assert b_admin.json()["results"] == [{"metrics": [1], "dimensions": []}]

    # The summary: a key's own site by default, 404 for another, admin-only across sites.
    summary = client.get("/api/stats/summary", headers=_bearer(key_a))
    assert summary.status_code == 200, summary.text
    assert summary.json()["total"] == 2
    assert {p["link"] for p in summary.json()["top_pages"]} == {"/a-home", "/a-docs"}
    assert client.get(f"/api/stats/summary?site={B}", headers=_bearer(key_a)).status_code == 404
    assert client.get("/api/stats/summary", headers=admin).json()["total"] == 3
    assert client.get(f"/api/stats/summary?site={B}", headers=admin).json()["total"] == 1
    # Live windows, stream status and metrics count every site together: admins only.
    for path in ("/api/stats/live", "/metrics"):
        assert client.get(path, headers=_bearer(key_a)).status_code == 403, path
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws/live", headers=_bearer(key_a)) as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 1008 and "every site" in closed.value.reason

    # A new key works at once; a revoked one answers 401.
    new = client.post(f"/api/v1/sites/{A}/keys", headers=admin).json()
    fresh = client.post(
        "/api/v2/query?source=postgres", json=_query(A), headers=_bearer(new["api_key"])
    )
    assert fresh.status_code == 200, fresh.text
    gone = client.delete(f"/api/v1/sites/{A}/keys/{new['key_id']}", headers=admin)
    assert gone.status_code == 204
    revoked = client.post(
        "/api/v2/query?source=postgres", json=_query(A), headers=_bearer(new["api_key"])
    )
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    again = client.delete(f"/api/v1/sites/{A}/keys/{new['key_id']}", headers=admin)
    assert again.status_code == 404
    # The site's key cannot manage sites.
    assert client.get("/api/v1/sites", headers=_bearer(key_a)).status_code == 403


def test_a_shared_link_shows_one_site_read_only(api: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = api
    client.post("/api/v1/sites", json={"domain": A}, headers=admin)  # 201 or 409
    made = client.post(f"/api/v1/sites/{A}/shared-links", headers=admin)
    assert made.status_code == 201, made.text
    link = made.json()["token"]
    assert link.startswith("fpl_") and made.json()["url"] == f"/?link={link}"

    shown = client.get("/api/stats/summary", params={"link": link})
    assert shown.status_code == 200, shown.text
    assert shown.json()["total"] == 2
    assert client.get("/api/stats/summary", params={"link": link, "site": B}).status_code == 404
    query = client.post("/api/v2/query?source=postgres", json=_query(A), headers=_bearer(link))
    assert query.status_code == 200
    # Read-only: no admin endpoint, with the link as a bearer or in the URL.
    for r in (
        client.post("/api/v1/sites", json={"domain": "c.example"}, headers=_bearer(link)),
        client.post(f"/api/v1/sites/{A}/keys", headers=_bearer(link)),
        client.delete(f"/api/v1/sites/{A}", headers=_bearer(link)),
        client.get("/api/v1/sites", params={"link": link}),
    ):
        assert r.status_code in (401, 403), r.text
    assert client.get("/api/v1/sites", params={"link": link}).status_code == 401

    link_id = made.json()["link_id"]
    assert (
        client.delete(f"/api/v1/sites/{A}/shared-links/{link_id}", headers=admin).status_code == 204
    )
    assert client.get("/api/stats/summary", params={"link": link}).status_code == 401


def test_unknown_sites_and_foreign_origins_are_refused_and_counted(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = api
    client.post("/api/v1/sites", json={"domain": A}, headers=admin)

    def refused() -> float:
        text = client.get("/metrics", headers=admin).text
        line = next(
            x
            for x in text.splitlines()
            if x.startswith("footprint_api_footprints_refused_unknown_site_total ")
        )
        return float(line.split()[1])

    before = refused()
    body = [{"method": "GET", "link": "/"}, {"method": "GET", "link": "/", "site": "evil.example"}]
    r = client.post("/api/footprints", json=body, headers={"origin": f"https://{A}"})
    # A page of a.example posting another site's footprints: refused, naming the site.
    assert r.status_code == 403 and "evil.example" in r.json()["detail"]
    r = client.post("/api/footprints", json={"method": "GET", "link": "/", "site": "evil.example"})
    assert r.status_code == 422
    (issue,) = r.json()["detail"]
    assert issue["loc"] == ["body", "site"] and "not registered" in issue["msg"]
    r = client.post(
        "/api/footprints",
        json={"method": "GET", "link": "/"},
        headers={"origin": "https://evil.example"},
    )
    assert r.status_code == 422 and "access-control-allow-origin" not in r.headers
    assert refused() == before + 2

    # The registered site's own page is accepted, with CORS for its origin.
    ok = client.post(
        "/api/footprints", json={"method": "GET", "link": "/"}, headers={"origin": f"https://{A}"}
    )
    assert ok.status_code == 202 and ok.headers["access-control-allow-origin"] == f"https://{A}"
    # The default site "" is always accepted (servers posting without a site of their own).
    assert (
        client.post("/api/footprints", json={"method": "GET", "link": "/", "site": ""}).status_code
        == 202
    )

    bad = client.post("/api/v1/sites", json={"domain": "https://c.example/x"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "domain"]
    assert "without a scheme" in bad.json()["detail"][0]["msg"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_footprint_sites_add_prints_a_working_key(
    api: tuple[TestClient, dict[str, str]], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    client, admin = api
    # A second API process on the same database, as `footprint run` would serve.
    other = create_app(settings)
    other.router.lifespan_context = registry_only
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(other, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=20, what="the second API process")
        env = {**os.environ, "FOOTPRINT_JWT_SECRET": JWT_SECRET}
        cli = [str(Path(sys.executable).with_name("footprint")), "sites"]
        api_url = ["--api", f"http://127.0.0.1:{port}"]
        out = subprocess.run(
            [*cli, "add", "CLI.example", *api_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        key = out.stdout.strip().splitlines()[-1]
        assert key.startswith("fp_") and " " not in key
        listed = subprocess.run(
            [*cli, "list", *api_url], env=env, capture_output=True, text=True, timeout=60
        )
        assert "cli.example" in listed.stdout
        dup = subprocess.run(
            [*cli, "add", "cli.example", *api_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert dup.returncode == 1 and "409" in dup.stderr
        # footprint goals: the wiring through a process, the rest in this one (faster).
        goal = subprocess.run(
            [*cli[:-1], "goals", "add", "cli.example", "--page", "/blog/**", *api_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert goal.returncode == 0, goal.stderr
        goal_id = goal.stdout.split("\t")[0]
        assert goal.stdout == f"{goal_id}\tVisit /blog/**\tpage /blog/**\n"
        url = f"http://127.0.0.1:{port}"
        ask = {"domain": "cli.example", "api": url}
        add = argparse.Namespace(action="add", event="Signup", page=None, name="Signed up", **ask)
        assert goals_cli(settings, add) == 0
        assert goals_cli(settings, argparse.Namespace(action="list", **ask)) == 0
        listed_goals = capsys.readouterr().out.splitlines()
        assert [line.split("\t")[1:] for line in listed_goals[-2:]] == [
            ["Visit /blog/**", "page /blog/**"],
            ["Signed up", "event Signup"],
        ]
        remove = argparse.Namespace(action="remove", goal_id=int(goal_id), **ask)
        assert goals_cli(settings, remove) == 0
        assert goals_cli(settings, remove) == 1  # gone already
        assert "404" in capsys.readouterr().err
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    # The first process learns the key at its next refresh.
    answer = wait_until(
        lambda: (
            client.post(
                "/api/v2/query?source=postgres", json=_query("cli.example"), headers=_bearer(key)
            ).status_code
            == 200
        ),
        timeout=10,
        what="the key made by another process",
    )
    assert answer
    removed = subprocess.run(
        [*cli, "remove", "cli.example", "--api", "http://127.0.0.1:1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert removed.returncode == 2 and "cannot reach" in removed.stderr


def test_goals_and_funnels_belong_to_their_site(api: tuple[TestClient, dict[str, str]]) -> None:
    """A site's key manages its own goals and funnels; another site's answer 404, a link may
    only look, and a goal in a funnel stays until the funnel goes."""
    client, admin = api
    keys = {}
    for site in ("g1.example", "g2.example"):
        r = client.post("/api/v1/sites", json={"domain": site}, headers=admin)
        assert r.status_code == 201, r.text
        keys[site] = _bearer(r.json()["api_key"])
    mine = keys["g1.example"]
    signup = {"site_id": "G1.example", "goal_type": "event", "event_name": "Signup"}
    made = client.put("/api/v1/sites/goals", json=signup, headers=mine)
    assert made.status_code == 200, made.text
    expected = {"display_name": "Signup", "goal_type": "event", "event_name": "Signup",
                "page_path": None}  # fmt: skip
    assert made.json() == {"id": made.json()["id"], **expected}
    page = {"site_id": "g1.example", "goal_type": "page", "page_path": "/blog/**"}
    blog = client.put("/api/v1/sites/goals", json=page, headers=mine).json()
    assert blog["display_name"] == "Visit /blog/**"
    # The key of g1 reaches nothing of g2, as if g2 did not exist; an admin reaches both.
    theirs = {**signup, "site_id": "g2.example"}
    assert client.put("/api/v1/sites/goals", json=theirs, headers=mine).status_code == 404
    assert client.get("/api/v1/sites/goals?site_id=g2.example", headers=mine).status_code == 404
    assert client.put("/api/v1/sites/goals", json=theirs, headers=admin).status_code == 200
    listed = client.get("/api/v1/sites/goals?site_id=g1.example", headers=mine).json()["goals"]
    assert [g["display_name"] for g in listed] == ["Signup", "Visit /blog/**"]
    # Nor can g2's key delete g1's goal by its id.
    gone = client.delete(f"/api/v1/sites/goals/{blog['id']}?site_id=g2.example",
                         headers=keys["g2.example"])  # fmt: skip
    assert gone.status_code == 404 and "no goal" in gone.json()["detail"]
    # A display name is one goal's only.
    clash = {**page, "page_path": "/pricing", "display_name": "Signup"}
    assert client.put("/api/v1/sites/goals", json=clash, headers=mine).status_code == 409
    # Hostile goals are refused before PostgreSQL sees them.
    for hostile in (
        {**signup, "page_path": "/x"},  # an event name or a path, not both
        {**signup, "event_name": "a\x00b"},  # PostgreSQL text cannot hold a NUL
        {**page, "page_path": "blog"},  # a path starts with /
        {**signup, "display_name": "x" * 10_000},
        {**signup, "event_name": "   "},
        {**signup, "site_id": "g1.example\x00"},
        {**signup, "goal_type": "scroll"},
    ):
        r = client.put("/api/v1/sites/goals", json=hostile, headers=mine)
        assert r.status_code == 422, (hostile, r.text)
    for query in ("site_id=g1.example%00", "site_id=" + "x" * 400, ""):
        assert client.get(f"/api/v1/sites/goals?{query}", headers=mine).status_code == 422

    funnel = {"site_id": "g1.example", "name": "Read then sign up",
              "steps": [blog["id"], made.json()["id"]]}  # fmt: skip
    stored = client.put("/api/v1/sites/funnels", json=funnel, headers=mine)
    assert stored.status_code == 200, stored.text
    assert [s["id"] for s in stored.json()["steps"]] == funnel["steps"]
    g2 = client.get("/api/v1/sites/goals?site_id=g2.example", headers=admin).json()["goals"]
    foreign = {**funnel, "steps": [blog["id"], g2[0]["id"]]}
    assert client.put("/api/v1/sites/funnels", json=foreign, headers=mine).status_code == 404
    for steps in ([blog["id"]], [blog["id"]] * 2, list(range(1, 10)), [0, 1], [2**63, 1]):
        hostile = {**funnel, "steps": steps}
        r = client.put("/api/v1/sites/funnels", json=hostile, headers=mine)
        assert r.status_code == 422, (steps, r.text)
    report = {"site_id": "g1.example", "funnel_id": stored.json()["id"], "date_range": "day"}
    answer = client.post("/api/v2/funnel?source=postgres", json=report, headers=mine)
    assert answer.status_code == 200, answer.text
    assert [s["visitors"] for s in answer.json()["steps"]] == [0, 0]
    other = client.post("/api/v2/funnel?source=postgres", json=report, headers=keys["g2.example"])
    assert other.status_code == 404

    # A shared link lists and reads, never changes.
    link = client.post("/api/v1/sites/g1.example/shared-links", headers=admin).json()["token"]
    assert client.get("/api/v1/sites/funnels?site_id=g1.example",
                      headers=_bearer(link)).status_code == 200  # fmt: skip
    assert client.put("/api/v1/sites/goals", json=signup, headers=_bearer(link)).status_code == 403
    # A plain user's token reads nothing.
    user = _bearer(mint_token(client.app.state.settings, "someone"))  # type: ignore[attr-defined]
    assert client.get("/api/v1/sites/goals?site_id=g1.example", headers=user).status_code == 403

    # The goal is a step: it stays until the funnel goes.
    in_use = client.delete(f"/api/v1/sites/goals/{blog['id']}?site_id=g1.example", headers=mine)
    assert in_use.status_code == 409 and "Read then sign up" in in_use.json()["detail"]
    funnel_id = stored.json()["id"]
    dropped = client.delete(f"/api/v1/sites/funnels/{funnel_id}?site_id=g1.example", headers=mine)
    assert dropped.json() == {"deleted": True}
    deleted = client.delete(f"/api/v1/sites/goals/{blog['id']}?site_id=g1.example", headers=mine)
    assert deleted.json() == {"deleted": True}
    listed = client.get("/api/v1/sites/goals?site_id=g1.example", headers=mine).json()["goals"]
    assert [g["display_name"] for g in listed] == ["Signup"]
    # Removing the site removes its goals.
    assert client.delete("/api/v1/sites/g1.example", headers=admin).status_code == 204
    assert client.get("/api/v1/sites/goals?site_id=g1.example", headers=admin).json() == {
        "goals": []
    }
    # Also while a funnel still uses them: the site goes with its funnels and goals.
    second = client.put("/api/v1/sites/goals", json={**page, "site_id": "g2.example"},
                        headers=admin).json()  # fmt: skip
    first = g2[0]["id"]
    steps = {"site_id": "g2.example", "name": "Two steps", "steps": [first, second["id"]]}
    assert client.put("/api/v1/sites/funnels", json=steps, headers=admin).status_code == 200
    assert client.delete("/api/v1/sites/g2.example", headers=admin).status_code == 204
    assert client.get("/api/v1/sites/funnels?site_id=g2.example", headers=admin).json() == {
        "funnels": []
    }


def test_a_sites_own_retention_is_set_through_the_api(
    api: tuple[TestClient, dict[str, str]], settings: Settings
) -> None:
    """Registered with one, changed, back to the default: what the retention run reads."""
    client, admin = api
    r = client.post("/api/v1/sites", json={"domain": "kept.example", "raw_retention_days": 30},
                    headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text

    def kept() -> Any:
        listed = client.get("/api/v1/sites", headers=admin).json()["sites"]
        return next(s["raw_retention_days"] for s in listed if s["domain"] == "kept.example")

    def read_by_retention() -> dict[str, int]:
        with psycopg.connect(settings.require("postgres_url")) as conn:
            return site_days(conn)

    assert kept() == 30 and read_by_retention().get("kept.example") == 30
    change = client.patch("/api/v1/sites/Kept.Example", json={"raw_retention_days": 7},
                          headers=admin)  # fmt: skip
    assert change.json() == {"raw_retention_days": 7}
    assert kept() == 7 and read_by_retention().get("kept.example") == 7
    back = client.patch("/api/v1/sites/kept.example", json={"raw_retention_days": None},
                        headers=admin)  # fmt: skip
    assert back.status_code == 200 and kept() is None
    assert "kept.example" not in read_by_retention()
    # true is not 1, nor "7" a number (schemathesis sent true and got 200).
    hostile = ({"raw_retention_days": 0}, {"raw_retention_days": "a week"}, {}, {"x": 1},
               {"raw_retention_days": True}, {"raw_retention_days": "7"})  # fmt: skip
    for body in hostile:
        assert (
            client.patch("/api/v1/sites/kept.example", json=body, headers=admin).status_code == 422
        )
    missing = client.patch("/api/v1/sites/gone.example", json={"raw_retention_days": 7},
                           headers=admin)  # fmt: skip
    assert missing.status_code == 404
    key = _bearer(r.json()["api_key"])
    assert client.patch("/api/v1/sites/kept.example", json={"raw_retention_days": 7},
                        headers=key).status_code in (401, 403)  # fmt: skip
