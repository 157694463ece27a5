"""ClickHouse on both backends: chdb in-process and a real clickhouse-server (18.16 here).

The same DDL, inserts and dashboard queries run unchanged on both and must give identical
Python values. Only one chdb data path can be open per process, so chdb handles are opened per
test and closed again (another module may use chdb too).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import struct
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from footprint.clickhouse import (
    ClickHouse,
    ClickHouseError,
    chdb_open_path,
    connect,
    substitute_params,
)
from footprint.migrate import SQL_DIR, apply_clickhouse
from footprint.schema import Footprint
from footprint.stack.clickhouse import ClickHouseServer, find_clickhouse_server
from streams.sinks.base import Batch
from streams.sinks.clickhouse import CHECK_CHUNK, ClickHouseSink

pytestmark = pytest.mark.integration

UTC = dt.UTC
TABLES = (
    "user_footprint_minute_mv",
    "user_footprint_minute",
    "user_footprint",
    "fp_types",
    "fp_floats",
)

COLUMNS = (
    "event_id",
    "method",
    "link",
    "route",
    "status_code",
    "duration_ms",
    "footprint_time",
    "referrer",
    "referrer_host",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "browser",
    "os",
    "device",
    "is_bot",
    "visitor_id",
    "user_id",
    "ingested_at",
)

HOSTILE = [
    "it's",
    'say "hi"',
    "back\\slash\\",
    "trailing backslash \\",
    "\\'",
    "'; DROP TABLE user_footprint; --",
    "x' OR '1'='1",
    "%(other)s and %s and %%",
    "tab\there\nnewline\r\0nul",
    "unicode: héllo wörld 日本語 🚀 \u2028",
    "`backtick` /* comment */ -- dash",
    "",
]


@pytest.fixture(scope="session")
def ch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    if find_clickhouse_server() is None:
        pytest.skip("no clickhouse-server installed (apt-get install clickhouse-server)")
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse"))
    with server:
        yield server


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Reuse the path if this process already has chdb open; a test database keeps us apart.
    path = chdb_open_path() or str(tmp_path_factory.mktemp("chdb") / "data")
    return f"chdb://{path}?database=footprint_test"


def _reset(client: ClickHouse) -> ClickHouse:
    for table in TABLES:  # the view first: it writes into the rollup
        client.execute(f"DROP TABLE IF EXISTS {table}")
    apply_clickhouse(client)
    return client


@pytest.fixture(params=["chdb", "server"])
def ch(request: pytest.FixtureRequest, chdb_url: str) -> Iterator[ClickHouse]:
    if request.param == "chdb":
        client = connect(chdb_url)
    else:
        client = connect(request.getfixturevalue("ch_server").url)
    try:
        yield _reset(client)
    finally:
        client.close()


@pytest.fixture
def both(chdb_url: str, ch_server: ClickHouseServer) -> Iterator[tuple[ClickHouse, ClickHouse]]:
    a, b = connect(chdb_url), connect(ch_server.url)
    try:
        yield _reset(a), _reset(b)
    finally:
        a.close()
        b.close()


def make_row(
    when: dt.datetime,
    link: str = "/",
    *,
    event_id: uuid.UUID | None = None,
    method: str = "GET",
    ingested: dt.datetime | None = None,
    **over: Any,
) -> list[Any]:
    values: dict[str, Any] = {
        "event_id": event_id or uuid.uuid4(),
        "method": method,
        "link": link,
        "route": link,
        "status_code": 200,
        "duration_ms": 12.3,
        "footprint_time": when,
        "referrer": "",
        "referrer_host": "",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "utm_term": "",
        "utm_content": "",
        "browser": "Firefox",
        "os": "Linux",
        "device": "desktop",
        "is_bot": False,
        "visitor_id": "v1",
        "user_id": "",
        "ingested_at": ingested or when,
    }
    values.update(over)
    return [values[c] for c in COLUMNS]


def dataset(seed: int = 7, n: int = 3000) -> list[list[Any]]:
    rng = random.Random(seed)
    links = [f"/page/{i}" for i in range(25)]
    start = dt.datetime(2024, 3, 31, 23, 0, tzinfo=UTC)  # spans a month boundary (2 partitions)
    rows = []
    for _ in range(n):
        when = start + dt.timedelta(seconds=rng.randrange(0, 3 * 3600))
        link = links[min(int(rng.expovariate(0.25)), len(links) - 1)]
        method = rng.choice(["GET", "GET", "GET", "POST"])
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        rows.append(make_row(when, link, event_id=event_id, method=method))
    return rows


FIFTEEN = """
SELECT toStartOfFifteenMinutes(footprint_time) AS bucket, count() AS visits
FROM user_footprint FINAL
WHERE footprint_time >= toDateTime(%(since)s, 'UTC')
  AND footprint_time < toDateTime(%(until)s, 'UTC')
GROUP BY bucket
ORDER BY bucket
"""

TOP_LINKS = """
SELECT link, sum(visits) AS total
FROM user_footprint_minute
WHERE minute >= toDateTime(%(since)s, 'UTC') AND method IN %(methods)s
GROUP BY link
ORDER BY total DESC, link
LIMIT %(limit)s
"""


# --------------------------------------------------------------------------- schema


def test_ddl_applies_twice(ch: ClickHouse) -> None:
    assert apply_clickhouse(ch) == [
        "001_user_footprint.sql",
        "002_user_footprint_minute.sql",
        "003_sites_events.sql",
    ]
    names = ch.execute(
        "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    )
    assert [n for (n,) in names if n.startswith("user_")] == [
        "user_footprint",
        "user_footprint_minute",
        "user_footprint_minute_mv",
    ]
    types = dict(
        ch.execute(
            "SELECT name, type FROM system.columns "
            "WHERE database = currentDatabase() AND table = 'user_footprint'"
        )
    )
    assert types["footprint_time"] == "DateTime('UTC')"
    assert types["method"] == "LowCardinality(String)"
    assert types["event_id"] == "UUID"
    assert list(types) == [*COLUMNS, "site", "name", "props.key", "props.value"]
    assert types["props.key"] == types["props.value"] == "Array(String)"


def test_sql_dir_is_found_from_the_package() -> None:
    assert (SQL_DIR / "clickhouse" / "001_user_footprint.sql").is_file()


# --------------------------------------------------------------------------- data


def test_duplicate_event_counts_once_with_final(ch: ClickHouse) -> None:
    t = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)
    dup = uuid.uuid4()
    ch.insert("user_footprint", COLUMNS, [make_row(t, "/a", event_id=dup), make_row(t, "/b")])
    # A redelivery arrives in a later batch, so it lands in another part.
    later = t + dt.timedelta(seconds=30)
    ch.insert("user_footprint", COLUMNS, [make_row(t, "/a", event_id=dup, ingested=later)])

    assert ch.execute("SELECT count() FROM user_footprint") == [(3,)]
    assert ch.execute("SELECT count() FROM user_footprint FINAL") == [(2,)]
    # The copy with the latest ingested_at is the one kept.
    assert ch.execute(
        "SELECT ingested_at FROM user_footprint FINAL WHERE event_id = %(id)s", {"id": dup}
    ) == [(later,)]
    ch.execute("OPTIMIZE TABLE user_footprint FINAL")
    assert ch.execute("SELECT count() FROM user_footprint") == [(2,)]


def test_materialized_view_fills_minute_rollup(ch: ClickHouse) -> None:
    rows = dataset(n=1200)
    half = len(rows) // 2
    ch.insert("user_footprint", COLUMNS, rows[:half])
    ch.insert("user_footprint", COLUMNS, rows[half:])

    expected = Counter((r[6].replace(second=0), r[1], r[2]) for r in rows)  # (minute, method, link)
    got = ch.execute(
        "SELECT minute, method, link, sum(visits) FROM user_footprint_minute "
        "GROUP BY minute, method, link ORDER BY minute, method, link"
    )
    assert got == sorted((m, meth, link, n) for (m, meth, link), n in expected.items())
    assert ch.execute("SELECT sum(visits) FROM user_footprint_minute") == [(len(rows),)]

    # The rollup matches the raw table per minute and link.
    from_raw = ch.execute(
        "SELECT toStartOfMinute(footprint_time) AS m, link, count() FROM user_footprint "
        "GROUP BY m, link ORDER BY m, link"
    )
    from_mv = ch.execute(
        "SELECT minute, link, sum(visits) FROM user_footprint_minute "
        "GROUP BY minute, link ORDER BY minute, link"
    )
    assert from_raw == from_mv

    # After merging, SummingMergeTree holds one row per key.
    ch.execute("OPTIMIZE TABLE user_footprint_minute FINAL")
    assert ch.execute("SELECT count() FROM user_footprint_minute") == [(len(expected),)]


def _python_fifteen(rows: list[list[Any]], since: dt.datetime, until: dt.datetime) -> list[Any]:
    buckets: Counter[dt.datetime] = Counter()
    for r in rows:
        t = r[6]
        if since <= t < until:
            buckets[t.replace(minute=t.minute - t.minute % 15, second=0)] += 1
    return sorted(buckets.items())


def test_fifteen_minute_buckets_and_top_links(ch: ClickHouse) -> None:
    rows = dataset()
    ch.insert("user_footprint", COLUMNS, rows)
    since = dt.datetime(2024, 3, 31, 23, 30, tzinfo=UTC)
    until = dt.datetime(2024, 4, 1, 1, 15, tzinfo=UTC)

    got = ch.execute(FIFTEEN, {"since": since, "until": until})
    assert got == _python_fifteen(rows, since, until)
    assert all(b.tzinfo is not None and b.utcoffset() == dt.timedelta(0) for b, _ in got)

    top = ch.execute(TOP_LINKS, {"since": since, "methods": ("GET", "POST"), "limit": 5})
    counts = Counter(r[2] for r in rows if r[6].replace(second=0) >= since)
    assert top == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]


def test_both_backends_give_identical_results(both: tuple[ClickHouse, ClickHouse]) -> None:
    rows = dataset(seed=11, n=2000)
    since = dt.datetime(2024, 3, 31, 23, 0, tzinfo=UTC)
    until = since + dt.timedelta(hours=3)
    queries: list[tuple[str, dict[str, Any] | None]] = [
        (FIFTEEN, {"since": since, "until": until}),
        (TOP_LINKS, {"since": since, "methods": ("GET",), "limit": 10}),
        (
            "SELECT link, count() AS c, uniqExact(visitor_id), round(avg(duration_ms), 4), "
            "min(footprint_time), max(event_id) FROM user_footprint FINAL "
            "GROUP BY link ORDER BY c DESC, link LIMIT 5",
            None,
        ),
        (
            "SELECT toStartOfHour(footprint_time) AS h, method, count() FROM user_footprint "
            "GROUP BY h, method ORDER BY h, method",
            None,
        ),
        (
            "SELECT event_id, method, link, status_code, duration_ms, footprint_time, is_bot, "
            "ingested_at FROM user_footprint ORDER BY event_id LIMIT 20",
            None,
        ),
    ]
    results = []
    for client in both:
        client.insert("user_footprint", COLUMNS, rows)
        results.append([client.execute(sql, params) for sql, params in queries])
    chdb_results, server_results = results
    for (sql, _), a, b in zip(queries, chdb_results, server_results, strict=True):
        assert a, sql
        assert a == b, sql
        # Same values and the same Python types, value by value.
        assert [[type(v) for v in row] for row in a] == [[type(v) for v in row] for row in b]


# --------------------------------------------------------------------------- types and escaping


def test_python_types_round_trip(ch: ClickHouse) -> None:
    ch.execute(
        "CREATE TABLE fp_types (n UInt64, i Int64, f Float64, s String, "
        "ns Nullable(String), t DateTime('UTC'), u UUID, b UInt8, lc LowCardinality(String)) "
        "ENGINE = MergeTree ORDER BY n"
    )
    when = dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    berlin = dt.timezone(dt.timedelta(hours=1))
    u = uuid.uuid4()
    ch.insert(
        "fp_types",
        ["n", "i", "f", "s", "ns", "t", "u", "b", "lc"],
        [
            (2**64 - 1, -(2**63), 0.1, "é\\'x", None, when, u, True, "GET"),
            # A non-UTC aware datetime is the same instant; a naive one is taken as UTC.
            (1, 5, -1.5, "", "set", when.astimezone(berlin), str(u), False, ""),
            (2, 6, 1e300, "z", "", when.replace(tzinfo=None), u, 1, "POST"),
        ],
    )
    rows = ch.execute("SELECT n, i, f, s, ns, t, u, b, lc FROM fp_types ORDER BY n")
    assert rows == [
        (1, 5, -1.5, "", "set", when, u, 0, ""),
        (2, 6, 1e300, "z", "", when, u, 1, "POST"),
        (2**64 - 1, -(2**63), 0.1, "é\\'x", None, when, u, 1, "GET"),
    ]
    n, i, f, s, ns, t, uu, b, lc = rows[2]
    assert type(n) is int and type(i) is int and type(b) is int
    assert type(f) is float
    assert type(s) is str and type(lc) is str and ns is None
    assert isinstance(t, dt.datetime) and t.tzinfo is UTC
    assert isinstance(uu, uuid.UUID)

    # Expressions without a time zone in their type come back as UTC instants too.
    ((now, today),) = ch.execute("SELECT now(), toDate(now())")
    assert now.tzinfo is UTC
    assert abs((dt.datetime.now(UTC) - now).total_seconds()) < 60
    assert isinstance(today, dt.date)


def test_non_finite_floats_round_trip(ch: ClickHouse) -> None:
    ch.execute(
        "CREATE TABLE fp_floats (n UInt8, f Float64, g Float32) ENGINE = MergeTree ORDER BY n"
    )
    nan, inf = float("nan"), float("inf")
    ch.insert("fp_floats", ["n", "f", "g"], [(1, nan, 1.5), (2, inf, -inf), (3, -0.0, 0.1)])
    (a, b, c) = ch.execute("SELECT f, g FROM fp_floats ORDER BY n")
    assert math.isnan(a[0]) and a[1] == 1.5
    assert b == (inf, -inf)
    assert c == (-0.0, struct.unpack("f", struct.pack("f", 0.1))[0])
    assert ch.execute("SELECT %(x)s, %(y)s", {"x": inf, "y": 1e-300})[0] == (inf, 1e-300)


def test_a_block_given_column_by_column_is_stored_as_its_rows(ch: ClickHouse) -> None:
    t = dt.datetime(2024, 3, 1, 12, 30, 5, tzinfo=UTC)
    rows = [make_row(t, f"/c/{i}", user_id=HOSTILE[i % len(HOSTILE)]) for i in range(7)]
    rows += [make_row(t, "/c/int", footprint_time=int(t.timestamp()))]  # epoch seconds too
    ch.insert_columns("user_footprint", COLUMNS, [list(c) for c in zip(*rows, strict=True)])
    got = ch.execute("SELECT link, user_id, footprint_time FROM user_footprint ORDER BY link")
    want = sorted((row[2], row[COLUMNS.index("user_id")], t) for row in rows)
    assert sorted(got) == want
    with pytest.raises(ClickHouseError, match="cannot serialise"):  # a column one value short
        ch.insert_columns("user_footprint", COLUMNS, [["x"]] + [[1, 2]] * (len(COLUMNS) - 1))
    with pytest.raises(ClickHouseError, match="cannot serialise"):  # a column missing
        ch.insert_columns("user_footprint", COLUMNS[:-1], [[v] for v in rows[0]])
    assert ch.execute("SELECT count() FROM user_footprint") == [(8,)]


def test_none_for_non_nullable_column_is_an_error(ch: ClickHouse) -> None:
    row = make_row(dt.datetime(2024, 1, 1, tzinfo=UTC), link=None)
    with pytest.raises(ClickHouseError):
        ch.insert("user_footprint", COLUMNS, [row])


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_parameter_round_trips_as_data(ch: ClickHouse, hostile: str) -> None:
    assert ch.execute("SELECT %(s)s, length(%(s)s)", {"s": hostile}) == [
        (hostile, len(hostile.encode()))
    ]
    t = dt.datetime(2024, 1, 1, tzinfo=UTC)
    # Through a parameterised INSERT … SELECT and through the batch insert.
    ch.execute(
        "INSERT INTO user_footprint (event_id, link, referrer, footprint_time, ingested_at) "
        "SELECT %(id)s, %(link)s, %(link)s, %(t)s, %(t)s",
        {"id": uuid.uuid4(), "link": hostile, "t": t},
    )
    ch.insert("user_footprint", COLUMNS, [make_row(t, hostile, user_id=hostile)])
    assert ch.execute(
        "SELECT link, referrer, user_id FROM user_footprint WHERE link = %(s)s ORDER BY user_id",
        {"s": hostile},
    ) == [(hostile, hostile, ""), (hostile, "", hostile)]
    assert ch.execute("SELECT count() FROM user_footprint") == [(2,)]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO user_footprint (link) VALUES ('x')",
        "insert into user_footprint values",
        'INSERT INTO user_footprint (link) FORMAT JSONEachRow {"link": "x"}',
        "  INSERT INTO TABLE footprint.user_footprint SETTINGS a = 1 VALUES ('x')",
    ],
)
def test_inline_insert_data_is_refused_alike(ch: ClickHouse, sql: str) -> None:
    # A server over the native protocol would wait for data blocks and hang.
    with pytest.raises(ValueError, match="insert"):
        ch.execute(sql)
    assert ch.execute("SELECT count() FROM user_footprint") == [(0,)]


def test_collections_and_scalars_as_parameters(ch: ClickHouse) -> None:
    u = uuid.UUID("7f1c0f58-2d7e-4c2a-9f1b-0d7a1c2b3e4f")
    got = ch.execute(
        "SELECT %(n)s + 1, %(f)s, %(yes)s, %(none)s IS NULL, toUUID(%(u)s), has(%(arr)s, 'b'), "
        "'x' IN %(one)s, 'b' IN %(tup)s, toDate(%(day)s)",
        {
            "n": 41,
            "f": 2.5,
            "yes": True,
            "none": None,
            "u": u,
            "arr": ["a", "b'"],
            "one": ("x",),
            "tup": ("a", "b"),
            "day": dt.date(2024, 2, 29),
        },
    )
    assert got == [(42, 2.5, 1, 1, u, 0, 1, 1, dt.date(2024, 2, 29))]


def test_errors_carry_the_clickhouse_code(ch: ClickHouse) -> None:
    with pytest.raises(ClickHouseError) as info:
        ch.execute("SELECT * FROM no_such_table")
    assert info.value.code == 60  # UNKNOWN_TABLE
    assert "no_such_table" in str(info.value)
    assert ch.execute("SELECT 1") == [(1,)]  # the connection survives


def test_a_query_stopped_by_its_time_limit_leaves_the_next_answer_intact(chdb_url: str) -> None:
    # chdb kept the stopped query's partial output and put it before the next query's answer.
    ch = _reset(connect(chdb_url))
    try:
        ch.execute("CREATE TABLE big (n UInt64, l String) ENGINE = MergeTree ORDER BY n")
        ch.execute("INSERT INTO big SELECT number, toString(number % 5000) FROM numbers(3000000)")
        with pytest.raises(ClickHouseError) as info:
            ch.execute(
                "SELECT l, count() FROM big GROUP BY l ORDER BY l LIMIT 3 "
                "SETTINGS max_execution_time = 0.002"
            )
        assert info.value.code == 159  # TIMEOUT_EXCEEDED
        assert ch.execute("SELECT 1") == [(1,)]
    finally:
        ch.execute("DROP TABLE IF EXISTS big")
        ch.close()


def test_calls_from_many_threads(ch: ClickHouse) -> None:
    # Callers wrap every call in asyncio.to_thread: calls arrive from a pool of threads at once.
    t = dt.datetime(2024, 1, 1, tzinfo=UTC)

    def work(k: int) -> list[Any]:
        ch.insert("user_footprint", COLUMNS, [make_row(t, f"/t/{k}") for _ in range(5)])
        return [
            ch.execute("SELECT %(k)s, count() >= 0 FROM user_footprint", {"k": k}) for _ in range(5)
        ]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(24)))
    assert all(r == [[(k, 1)]] * 5 for k, r in enumerate(results))
    assert ch.execute("SELECT count() FROM user_footprint") == [(24 * 5,)]


# --------------------------------------------------------------------------- connect


def test_parameters_are_rendered_by_clickhouse_drivers_escaping() -> None:
    sql = "SELECT %(s)s, %(b)s, %(t)s, %(n)s, %(ids)s"
    aware = dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    params = {"s": "a'b\\", "b": True, "t": aware, "n": None, "ids": (1, 2)}
    assert substitute_params(sql, params) == (
        "SELECT 'a\\'b\\\\', 1, '2024-01-01 00:00:00', NULL, (1, 2)"
    )


def test_unknown_scheme_is_named() -> None:
    with pytest.raises(ValueError, match="postgres://"):
        connect("postgres://localhost/db")
    with pytest.raises(ValueError, match="chdb"):
        connect("chdb://")


def test_chdb_handles_share_one_engine(chdb_url: str, tmp_path: Path) -> None:
    a = connect(chdb_url)
    b = connect(chdb_url)
    try:
        a.execute("CREATE TABLE IF NOT EXISTS shared_t (x UInt8) ENGINE = Memory")
        a.insert("shared_t", ["x"], [[7]])
        assert b.execute("SELECT x FROM shared_t") == [(7,)]
        with pytest.raises(ClickHouseError, match="already open"):
            connect(f"chdb://{tmp_path / 'other'}")
        a.close()
        a.close()  # idempotent, and b keeps working
        assert b.execute("SELECT count() FROM shared_t") == [(1,)]
        b.execute("DROP TABLE shared_t")
    finally:
        a.close()
        b.close()


def test_a_chdb_path_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    script = (
        "import sys, time; from footprint.clickhouse import connect; "
        "c = connect(sys.argv[1]); c.execute('SELECT 1'); "
        "print('ready', flush=True); time.sleep(60)"
    )
    url = f"chdb://{tmp_path / 'held'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        # Another data path is already open here when chdb_url was used; this must still fail
        # with a message about the other process, not hang or crash.
        if chdb_open_path() is None:
            with pytest.raises(ClickHouseError, match="another process"):
                connect(url)
        else:
            with pytest.raises(ClickHouseError, match="already open"):
                connect(url)
    finally:
        holder.kill()
        holder.wait()


def test_server_creates_missing_database(ch_server: ClickHouseServer) -> None:
    # A driver option (connect_timeout) and a server setting (max_threads) in the query string.
    url = ch_server.url.rsplit("/", 1)[0] + "/fp_created_here?connect_timeout=5&max_threads=1"
    client = connect(url)
    try:
        assert client.execute("SELECT currentDatabase()") == [("fp_created_here",)]
        assert client.execute("SELECT value FROM system.settings WHERE name = 'max_threads'") == [
            ("1",)
        ]
        assert client.server_version[:2] >= (18, 16)
    finally:
        client.close()
    with pytest.raises(ClickHouseError):
        client.execute("SELECT 1")


def test_a_large_replayed_batch_is_checked_in_chunks_and_inserted_once(ch: ClickHouse) -> None:
    # A replay after a crash can put thousands of footprints in doubt: more event ids than one
    # query may hold (max_query_size). Those already stored are left out, the rest inserted.
    t = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    stored = [
        Footprint(event_id=uuid.uuid4(), method="GET", link=f"/r/{i % 50}", footprint_time=t)
        for i in range(7000)
    ]
    ClickHouseSink._write(ch, Batch(footprints=stored))
    fresh = [
        Footprint(event_id=uuid.uuid4(), method="GET", link="/r/new", footprint_time=t)
        for _ in range(10)
    ]
    replay = Batch(
        footprints=stored + fresh, in_doubt=frozenset(fp.event_id for fp in stored + fresh)
    )
    assert len(replay.in_doubt) > 3 * CHECK_CHUNK  # 7,010 ids: ~340 KB in one query
    ClickHouseSink._write(ch, replay)
    assert ch.execute("SELECT count(), uniqExact(event_id) FROM user_footprint") == [(7010, 7010)]


def test_a_batch_spanning_more_months_than_one_insert_may_is_stored(ch: ClickHouse) -> None:
    # 101 footprints, one per month from 2000: more partitions than one insert block may touch
    # (max_partitions_per_insert_block, 100). A backfill like this must not stall the sink.
    first = dt.datetime(2000, 1, 15, tzinfo=UTC)
    footprints = [
        Footprint(
            event_id=uuid.uuid4(),
            method="GET",
            link="/old",
            footprint_time=first.replace(year=2000 + m // 12, month=m % 12 + 1),
        )
        for m in range(101)
    ]
    ClickHouseSink._write(ch, Batch(footprints=footprints))
    assert ch.execute(
        "SELECT count(), uniqExact(toYYYYMM(footprint_time)) FROM user_footprint"
    ) == [(101, 101)]


def test_site_name_and_props_are_stored_on_every_version(ch: ClickHouse) -> None:
    # Props are two parallel arrays (Nested), which 18.16 has as well as chdb.
    t = dt.datetime(2026, 1, 15, 12, tzinfo=UTC)
    footprints = [
        Footprint(
            event_id=uuid.uuid4(),
            method="GET",
            link="/signup",
            footprint_time=t,
            site="Example.COM",
            name="Signup",
            props={"plan": "pro", "it's": "a 'quote'"},
        ),
        Footprint(event_id=uuid.uuid4(), method="GET", link="/", footprint_time=t),
    ]
    ClickHouseSink._write(ch, Batch(footprints=footprints))
    rows = ch.execute(
        "SELECT site, name, props.value[indexOf(props.key, 'plan')], "
        "props.value[indexOf(props.key, %(k)s)], length(props.key) "
        "FROM user_footprint ORDER BY link DESC",
        {"k": "it's"},
    )
    assert rows == [("example.com", "Signup", "pro", "a 'quote'", 2), ("", "pageview", "", "", 0)]
