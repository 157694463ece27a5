"""Data lifecycle on the real stores: partitions, retention, a user's deletion and export, CSV.

PostgreSQL and Redis are the session's servers; ClickHouse is chdb in this process, and the
18.16 server (Debian's) where it is installed. No broker: what is tested is what the stores
hold after each operation.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis as redis_lib
from fastapi.testclient import TestClient

from api.main import create_app
from footprint import retention
from footprint.clickhouse import chdb_open_path, connect
from footprint.keys import inbox_key
from footprint.migrate import SQL_DIR, apply_clickhouse, apply_postgres
from footprint.schema import Footprint
from footprint.settings import Settings, load_settings
from footprint.stack import PostgresServer, RedisServer
from footprint.stack.clickhouse import ClickHouseServer, find_clickhouse_server
from footprint.tokens import mint_token
from streams.sinks.base import Batch
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.postgres import PostgresSink
from tests.integration.conftest import JWT_SECRET, clickhouse_database_url, fresh_redis_url
from tests.integration.stored import stored_api, stores_only

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def _fp(
    days_ago: float, site: str = "a.com", user: str = "", link: str = "/", **more: Any
) -> Footprint:
    return Footprint(
        event_id=uuid.uuid4(),
        method="GET",
        link=link,
        footprint_time=NOW - timedelta(days=days_ago),
        site=site,
        user_id=user,
        **{"visitor_id": "v", **more},
    )


def _database(postgres: PostgresServer) -> str:
    name = f"lc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres.url_for(name)


def _store_pg(
    url: str, footprints: list[Footprint], sources: list[tuple[int, int]] | None = None
) -> tuple[set[Any], set[Any]]:
    async def store() -> tuple[set[Any], set[Any]]:
        sink = PostgresSink(url)
        try:
            return await sink.claim(Batch(footprints=footprints, sources=sources or []))
        finally:
            await sink.close()

    return asyncio.run(store())


def _pg(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = chdb_open_path() or str(tmp_path_factory.mktemp("chdb") / "data")
    yield f"chdb://{path}?database=lc_{uuid.uuid4().hex[:8]}"


# --- PostgreSQL partitions ------------------------------------------------------------------


def test_an_existing_table_with_rows_is_partitioned_keeping_every_row(
    stores: tuple[PostgresServer, RedisServer],
) -> None:
    url = _database(stores[0])
    old = Path(tempfile.mkdtemp()) / "postgres"
    old.mkdir()
    for path in sorted((SQL_DIR / "postgres").glob("00[1-5]_*.sql")):
        shutil.copy(path, old / path.name)
    apply_postgres(url, old.parent)  # the schema before this version
    footprints = [_fp(3), _fp(45, site="b.com"), _fp(800)]
    _store_pg(url, footprints)
    before = _pg(url, "SELECT * FROM user_footprint ORDER BY id")

    apply_postgres(url)
    apply_postgres(url)  # every start-up applies it again

    assert _pg(url, "SELECT * FROM user_footprint ORDER BY id") == before
    homes = _pg(url, "SELECT tableoid::regclass::text FROM user_footprint ORDER BY id")
    assert [h for (h,) in homes] == [
        f"user_footprint_p{fp.footprint_time:%Y%m}" for fp in footprints
    ]
    # New rows continue the ids.
    _store_pg(url, [_fp(0)])
    assert _pg(url, "SELECT max(id) FROM user_footprint")[0][0] == before[-1][0] + 1


def test_a_redelivered_event_is_still_a_duplicate_and_no_date_is_refused(
    stores: tuple[PostgresServer, RedisServer],
) -> None:
    url = _database(stores[0])
    apply_postgres(url)
    first = [_fp(1), _fp(2)]
    _, created = _store_pg(url, first)
    assert created == {fp.event_id for fp in first}
    claims, created = _store_pg(url, first)  # a replay: same events, same times
    assert created == set(), "a re-delivered event was stored again"
    assert {c[0] for c in claims} == {fp.event_id for fp in first}
    assert _pg(url, "SELECT count(*) FROM user_footprint")[0][0] == 2

    # A batch of new events, events stored before and a second copy of a new one (a producer's
    # retry at another offset): the stored copy of each, and the ids this batch created.
    new, again = _fp(3), _fp(4)
    batch = [first[0], new, again, new, first[1]]
    claims, created = _store_pg(url, batch, [(0, 10), (1, 11), (0, 12), (2, 13), (1, 14)])
    assert created == {new.event_id, again.event_id}
    stored_first = {c for c in claims if c[0] in {fp.event_id for fp in first}}
    assert {c[0] for c in stored_first} == {fp.event_id for fp in first}
    assert (0, 10) not in {c[1:] for c in stored_first}, "an old event claimed by its replay"
    assert {c for c in claims if c[0] == again.event_id} == {(again.event_id, 0, 12)}
    copies = {c for c in claims if c[0] == new.event_id}
    assert len(copies) == 1, "both copies of an event count"
    assert copies <= {(new.event_id, 1, 11), (new.event_id, 2, 13)}
    # All new: every footprint is the stored copy of its event.
    fresh = [_fp(5), _fp(6)]
    claims, created = _store_pg(url, fresh, [(3, 1), (3, 2)])
    assert created == {fp.event_id for fp in fresh}
    assert claims == {(fresh[0].event_id, 3, 1), (fresh[1].event_id, 3, 2)}
    assert _pg(url, "SELECT count(*) FROM user_footprint")[0][0] == 6

    # A month without a partition (years back: a backfill) lands in the default partition...
    old = _fp(365 * 20)
    _, created = _store_pg(url, [old])
    assert created == {old.event_id}
    where = _pg(
        url,
        "SELECT tableoid::regclass::text FROM user_footprint WHERE event_id = %s",
        (old.event_id,),
    )
    assert where == [("user_footprint_default",)]
    assert _store_pg(url, [old])[1] == set(), "a duplicate in the default partition was stored"
    # ...and moves to its month's partition when the partitions are made.
    made = _pg(url, "SELECT footprint_ensure_partitions(2)")
    assert (f"user_footprint_p{old.footprint_time:%Y%m}",) in made
    where = _pg(
        url,
        "SELECT tableoid::regclass::text FROM user_footprint WHERE event_id = %s",
        (old.event_id,),
    )
    assert where == [(f"user_footprint_p{old.footprint_time:%Y%m}",)]
    ahead = (NOW.replace(day=1) + timedelta(days=62)).strftime("%Y%m")
    assert _pg(url, "SELECT to_regclass(%s)::text", (f"user_footprint_p{ahead}",)) != [(None,)]


# --- retention ------------------------------------------------------------------------------

RETAINED = [
    _fp(400),  # a month wholly past every retention: its partition is dropped
    _fp(40),  # past 30 days, in a month that also holds kept rows: deleted
    _fp(10),  # kept
    _fp(10, site="b.com"),  # b.com keeps 7 days: deleted
    _fp(3, site="b.com"),  # kept
]


def _settings(url: str, clickhouse: str, **more: Any) -> Settings:
    return load_settings(postgres_url=url, clickhouse_url=clickhouse, raw_retention_days=30, **more)


def _retention_case(stores: tuple[PostgresServer, RedisServer], clickhouse_url: str) -> None:
    url = _database(stores[0])
    apply_postgres(url)
    client = connect(clickhouse_url)
    try:
        apply_clickhouse(client)
        ClickHouseSink._write(client, Batch(footprints=RETAINED))
        rollup_before = client.execute("SELECT sum(visits) FROM user_footprint_minute")[0][0]
    finally:
        client.close()
    _store_pg(url, RETAINED)
    _pg(url, "INSERT INTO sites (domain, raw_retention_days) VALUES ('b.com', 7)")
    settings = _settings(url, clickhouse_url)
    old_month = f"{RETAINED[0].footprint_time:%Y%m}"

    planned = retention.run(settings, dry_run=True)
    assert _pg(url, "SELECT count(*) FROM user_footprint")[0][0] == 5, "a dry run deleted"
    listed = {(s.store, s.action, s.rows) for s in planned if s.action != "make partitions"}
    assert ("clickhouse", "drop partition", 1) in listed
    assert sum(s.rows for s in planned if s.action != "make partitions") == 6  # 3 per store

    done = retention.run(settings)
    # The old row was in the default partition (stored after the migration made partitions):
    # the run made its month's partition, then dropped it whole.
    assert ("postgres", "drop partition", 1) in {(s.store, s.action, s.rows) for s in done}
    kept = {RETAINED[2].event_id, RETAINED[4].event_id}
    assert {r[0] for r in _pg(url, "SELECT event_id FROM user_footprint")} == kept
    assert _pg(url, "SELECT to_regclass(%s)", (f"user_footprint_p{old_month}",)) == [(None,)]
    client = connect(clickhouse_url)
    try:
        ids = {r[0] for r in client.execute("SELECT event_id FROM user_footprint")}
        assert ids == kept
        parts = client.execute(
            "SELECT count() FROM system.parts WHERE database = currentDatabase() "
            "AND table = 'user_footprint' AND partition = %(p)s AND active",
            {"p": old_month},
        )
        assert parts[0][0] == 0, "the old month's partition is still there"
        # The rollup holds no user ids and outlives the raw rows (rollup retention 0: for ever).
        assert (
            client.execute("SELECT sum(visits) FROM user_footprint_minute")[0][0] == rollup_before
        )
    finally:
        client.close()
    # A second run finds nothing left to remove.
    assert sum(s.rows for s in retention.run(settings) if s.action != "make partitions") == 0


def test_retention_drops_old_months_and_deletes_the_rest_on_postgres_and_chdb(
    stores: tuple[PostgresServer, RedisServer], chdb: str
) -> None:
    _retention_case(stores, chdb)


@pytest.fixture(scope="module")
def clickhouse_1816(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    if find_clickhouse_server() is None:
        pytest.skip("no clickhouse-server installed")
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse")).start()
    try:
        yield server
    finally:
        server.stop()


def _native_db(server: ClickHouseServer) -> str:
    name = f"lc_{uuid.uuid4().hex[:8]}"
    client = connect(server.url)
    try:
        client.execute(f"CREATE DATABASE {name}")
    finally:
        client.close()
    return clickhouse_database_url(server, name)


def test_retention_on_a_clickhouse_server(
    stores: tuple[PostgresServer, RedisServer], clickhouse_1816: ClickHouseServer
) -> None:
    _retention_case(stores, _native_db(clickhouse_1816))


def test_the_retention_command_lists_and_then_removes(
    stores: tuple[PostgresServer, RedisServer],
    chdb: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from footprint.cli import main
    from footprint.settings import get_settings

    url = _database(stores[0])
    apply_postgres(url)
    _store_pg(url, [_fp(400), _fp(1)])
    monkeypatch.setenv("FOOTPRINT_POSTGRES_URL", url)
    monkeypatch.setenv("FOOTPRINT_CLICKHOUSE_URL", "")
    monkeypatch.setenv("FOOTPRINT_RAW_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    try:
        assert main(["retention", "run", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "would: postgres: delete user_footprint: 1 rows (every site before" in out
        assert "would remove 1 rows in all" in out
        assert _pg(url, "SELECT count(*) FROM user_footprint")[0][0] == 2
        assert main(["retention", "run"]) == 0
        out = capsys.readouterr().out
        assert "did: postgres: drop partition user_footprint_p" in out
        assert "removed 1 rows in all" in out
        assert _pg(url, "SELECT count(*) FROM user_footprint")[0][0] == 1
    finally:
        get_settings.cache_clear()


# --- one user's data ------------------------------------------------------------------------


_COMMUNITY = """
INSERT INTO users (id) VALUES ('alice'), ('bob'), ('carol');
INSERT INTO follows (follower_id, followee_id) VALUES ('alice', 'bob'), ('carol', 'alice'),
    ('carol', 'bob');
INSERT INTO posts (id, author_id, title) OVERRIDING SYSTEM VALUE
    VALUES (1, 'alice', 'alice''s post'), (2, 'bob', 'bob''s post');
INSERT INTO comments (id, post_id, author_id, parent_comment_id, body) OVERRIDING SYSTEM VALUE
    VALUES (1, 1, 'carol', NULL, 'on alice''s post'), (2, 2, 'alice', NULL, 'alice on bob''s'),
           (3, 2, 'carol', 2, 'carol replies to alice'), (4, 2, 'carol', NULL, 'carol on bob''s');
INSERT INTO penalties (user_id, moderator_id, reason) VALUES ('bob', 'alice', 'spam'),
    ('alice', 'carol', 'rude');
INSERT INTO user_notifications (id, event_id, "user", noti_type, payload) OVERRIDING SYSTEM VALUE
    VALUES (1, gen_random_uuid(), 'alice', 'follow_user', '{"actor_id": "carol"}'),
           (2, gen_random_uuid(), 'bob', 'follow_user', '{"actor_id": "alice"}'),
           (3, gen_random_uuid(), 'bob', 'create_post', '{"actor_id": "carol"}')
"""


@pytest.fixture
def user_api(
    stores: tuple[PostgresServer, RedisServer], chdb: str, tmp_path: Path
) -> Iterator[tuple[TestClient, Settings, list[Footprint]]]:
    url = _database(stores[0])
    apply_postgres(url)
    footprints = [_fp(1, user="alice"), _fp(2, user="alice", link="/p"), _fp(1, user="bob")]
    _store_pg(url, footprints)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _COMMUNITY.split(";"):
            conn.execute(statement)
    client = connect(chdb)
    try:
        apply_clickhouse(client)
        ClickHouseSink._write(client, Batch(footprints=footprints))
    finally:
        client.close()
    settings = load_settings(
        postgres_url=url,
        clickhouse_url=chdb,
        redis_url=fresh_redis_url(stores[1]),
        kafka_url="kafka://127.0.0.1:9",  # never started: these routes need no broker
        jwt_secret=JWT_SECRET,
        data_dir=str(tmp_path / "data"),
    )
    r = redis_lib.Redis.from_url(settings.require("redis_url"))
    r.zadd(inbox_key("alice"), {'{"id": 1}': 1})
    r.zadd(inbox_key("bob"), {'{"id": 2}': 2, '{"id": 3}': 3})
    app = create_app(settings)
    app.router.lifespan_context = stores_only
    admin = {"Authorization": f"Bearer {mint_token(settings, 'dpo', admin=True)}"}
    with TestClient(app, headers=admin) as test_client:
        yield test_client, settings, footprints


def test_a_users_data_is_exported_then_deleted_everywhere(
    user_api: tuple[TestClient, Settings, list[Footprint]],
) -> None:
    client, settings, footprints = user_api
    url = settings.require("postgres_url")

    r = client.get("/api/v1/users/alice/export")
    assert r.status_code == 200, r.text
    data = r.json()
    assert [f["event_id"] for f in data["footprints"]] == [
        str(footprints[1].event_id),
        str(footprints[0].event_id),
    ]
    assert [f["followee_id"] for f in data["following"]] == ["bob"]
    assert [f["follower_id"] for f in data["followers"]] == ["carol"]
    assert [p["title"] for p in data["posts"]] == ["alice's post"]
    assert [c["body"] for c in data["comments"]] == ["alice on bob's"]
    assert [p["reason"] for p in data["penalties_received"]] == ["rude"]
    assert [p["reason"] for p in data["penalties_given"]] == ["spam"]
    assert [n["id"] for n in data["notifications"]] == [1]
    user = {"Authorization": f"Bearer {mint_token(settings, 'alice')}"}
    assert client.get("/api/v1/users/alice/export", headers=user).status_code == 403
    assert client.delete("/api/v1/users/alice", headers=user).status_code == 403

    r = client.delete("/api/v1/users/alice")
    assert r.status_code == 200, r.text
    deleted = r.json()["deleted"]
    assert deleted["postgres"]["user_footprint"] == 2
    assert deleted["postgres"]["user_notifications"] == 2  # received, and the one naming alice
    assert deleted["clickhouse"] == {"user_footprint": 2}
    assert deleted["redis"] == {"inbox": 1, "inbox entries of others": 1}

    left = [r[0] for r in _pg(url, "SELECT user_id FROM user_footprint")]
    assert left == ["bob"]
    # The penalty alice gave stays, its moderator the [deleted] tombstone account.
    users = [r[0] for r in _pg(url, "SELECT id FROM users ORDER BY id")]
    assert users == ["[deleted]", "bob", "carol"]
    assert _pg(url, "SELECT follower_id, followee_id FROM follows") == [("carol", "bob")]
    assert [r[0] for r in _pg(url, "SELECT id FROM posts")] == [2]
    # Alice's comment and every comment on her post go; carol's reply to her stays, top-level.
    assert _pg(url, "SELECT id, parent_comment_id FROM comments ORDER BY id") == [
        (3, None),
        (4, None),
    ]
    assert _pg(url, "SELECT user_id, moderator_id FROM penalties") == [("bob", "[deleted]")]
    assert [r[0] for r in _pg(url, "SELECT id FROM user_notifications")] == [3]
    ch = connect(settings.require("clickhouse_url"))
    try:
        assert [r[0] for r in ch.execute("SELECT user_id FROM user_footprint")] == ["bob"]
    finally:
        ch.close()
    r_ = redis_lib.Redis.from_url(settings.require("redis_url"))
    assert not r_.exists(inbox_key("alice"))
    assert r_.zrange(inbox_key("bob"), 0, -1) == [b'{"id": 3}']

    assert client.get("/api/v1/users/alice/export").status_code == 404
    again = client.delete("/api/v1/users/alice")
    assert again.status_code == 200
    assert not any(n for tables in again.json()["deleted"].values() for n in tables.values())
    # A user id no store can hold (a NUL) is refused before any store sees it.
    assert client.delete("/api/v1/users/a%00b").status_code == 422


def test_user_deletion_on_a_clickhouse_18_16_server(
    stores: tuple[PostgresServer, RedisServer], clickhouse_1816: ClickHouseServer
) -> None:
    from api.users import _delete_clickhouse

    client = connect(_native_db(clickhouse_1816))
    try:
        apply_clickhouse(client)
        ClickHouseSink._write(client, Batch(footprints=[_fp(1, user="alice"), _fp(1, user="bob")]))
        assert _delete_clickhouse(client, "alice") == 1
        assert [r[0] for r in client.execute("SELECT user_id FROM user_footprint")] == ["bob"]
    finally:
        client.close()


# --- CSV --------------------------------------------------------------------------------------


def test_a_breakdown_answers_as_csv(
    stores: tuple[PostgresServer, RedisServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = [
        _fp(1, site="csv.site", visitor_id="a", utm_source='news, "daily"'),
        _fp(1, site="csv.site", visitor_id="b", utm_source='news, "daily"'),
        _fp(1, site="csv.site", visitor_id="c", utm_source="=1+1"),  # a spreadsheet would run it
    ]
    body = {
        "site_id": "csv.site",
        "metrics": ["pageviews"],
        "date_range": "7d",
        "dimensions": ["visit:utm_source"],
    }
    with stored_api(stores, tmp_path_factory, data, "csv") as (client, admin):
        for source in ("postgres", "clickhouse"):
            by_accept = client.post(
                f"/api/v2/query?source={source}", json=body, headers={**admin, "Accept": "text/csv"}
            )
            assert by_accept.status_code == 200, by_accept.text
            assert by_accept.headers["content-type"] == "text/csv; charset=utf-8"
            assert by_accept.text == (
                'visit:utm_source,pageviews\r\n"news, ""daily""",2\r\n\'=1+1,1\r\n'
            )
            by_format = client.post(
                f"/api/v2/query?source={source}&format=csv", json=body, headers=admin
            )
            assert by_format.text == by_accept.text
        # JSON stays the default, and errors stay JSON.
        assert client.post("/api/v2/query", json=body, headers=admin).json()["results"]
        bad = client.post(
            "/api/v2/query?format=csv", json={**body, "metrics": ["nope"]}, headers=admin
        )
        assert bad.status_code == 400
        assert "error" in bad.json()


def test_footprint_users_export_and_delete_through_a_running_api(
    user_api: tuple[TestClient, Settings, list[Footprint]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import json
    import threading

    import uvicorn

    from footprint.cli import main
    from footprint.settings import get_settings
    from footprint.stack import free_port
    from tests.integration.conftest import wait_until

    client, settings, _ = user_api
    served = create_app(settings)
    served.router.lifespan_context = stores_only
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    monkeypatch.setenv("FOOTPRINT_JWT_SECRET", JWT_SECRET)
    get_settings.cache_clear()
    api = ["--api", f"http://127.0.0.1:{port}"]
    try:
        wait_until(lambda: server.started, timeout=20, what="the API")
        out = tmp_path / "alice.json"
        assert main(["users", "export", "alice", "-o", str(out), *api]) == 0
        assert json.loads(out.read_text()) == client.get("/api/v1/users/alice/export").json()
        assert main(["users", "delete", "alice", *api]) == 0
        assert "postgres\tuser_footprint\t2" in capsys.readouterr().out
        assert main(["users", "export", "alice", *api]) == 1
        assert "404" in capsys.readouterr().err
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        get_settings.cache_clear()
    assert main(["users", "delete", "alice", *api]) == 2  # nothing listens any more
    assert "cannot reach" in capsys.readouterr().err


def test_a_deletion_redis_cannot_finish_changes_nothing_in_postgresql(
    user_api: tuple[TestClient, Settings, list[Footprint]],
) -> None:
    from footprint.stack import free_port

    client, settings, _ = user_api
    url = settings.require("postgres_url")
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    app = create_app(broken)
    app.router.lifespan_context = stores_only
    with TestClient(app, headers=dict(client.headers)) as down:
        r = down.delete("/api/v1/users/alice")
    assert r.status_code == 503, r.text
    assert "store unavailable" in r.json()["detail"]
    # Rolled back: a retry finds every notification id it must take out of the inboxes.
    assert _pg(url, "SELECT count(*) FROM user_footprint WHERE user_id = 'alice'") == [(2,)]
    assert _pg(url, "SELECT count(*) FROM user_notifications") == [(3,)]
    retry = client.delete("/api/v1/users/alice")
    assert retry.json()["deleted"]["redis"] == {"inbox": 1, "inbox entries of others": 1}
