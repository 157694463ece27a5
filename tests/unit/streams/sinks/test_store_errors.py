"""Each sink sorts its driver's errors into "unavailable" (retry) and "refused" (dead-letter).

The exceptions are the drivers' own classes, constructed as the drivers raise them.
"""

from __future__ import annotations

import struct

import psycopg
import pytest
from clickhouse_driver.errors import ErrorCodes
from psycopg import errors as pg
from redis import exceptions as rx

from footprint.clickhouse import ClickHouseError
from streams.sinks import clickhouse, postgres, redis
from streams.sinks.base import StoreRefused, StoreUnavailable


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("22021", 'invalid byte sequence for encoding "UTF8": 0x00'),
        ("22001", "value too long for type character varying(16)"),
        ("22003", "smallint out of range"),
        ("23502", 'null value in column "link" violates not-null constraint'),
        ("23514", 'new row for relation "user_footprint" violates check constraint "c"'),
        ("54000", "index row requires 8216 bytes, maximum size is 8191"),
    ],
)
def test_postgres_refuses_rows(sqlstate: str, message: str) -> None:
    error = postgres.classify(pg.lookup(sqlstate)(message))
    assert isinstance(error, StoreRefused)
    assert error.reason == f"postgres refused: {message}"


@pytest.mark.parametrize(
    "sqlstate",
    ["08006", "08001", "53300", "53100", "57P01", "57014", "40001", "40P01", "42P01", "58030"],
)
def test_postgres_outages_are_retried(sqlstate: str) -> None:
    assert isinstance(postgres.classify(pg.lookup(sqlstate)("x")), StoreUnavailable)


def test_postgres_without_a_sqlstate() -> None:
    # A refused connection has no SQLSTATE; a value the driver cannot dump is a DataError.
    refused_conn = psycopg.OperationalError("connection failed: Connection refused")
    assert isinstance(postgres.classify(refused_conn), StoreUnavailable)
    assert isinstance(postgres.classify(TimeoutError()), StoreUnavailable)
    assert isinstance(postgres.classify(psycopg.DataError("int too large")), StoreRefused)


def test_the_notification_stores_classify_as_their_servers_sinks_and_name_themselves() -> None:
    # The inbox and the fan-out reuse the PostgreSQL and Redis classifiers: a dead letter says
    # which of the two refused.
    too_long = postgres.classify(pg.lookup("22001")("value too long"), "notifications-postgres")
    assert isinstance(too_long, StoreRefused)
    assert too_long.reason == "notifications-postgres refused: value too long"
    wrong = redis.classify(rx.ResponseError("WRONGTYPE Operation"), "notifications-redis")
    assert isinstance(wrong, StoreRefused)
    assert wrong.reason == "notifications-redis refused: WRONGTYPE Operation"
    down = postgres.classify(pg.lookup("57P01")("terminating"), "notifications-postgres")
    assert isinstance(down, StoreUnavailable) and down.store == "notifications-postgres"


def test_clickhouse_codes_match_the_drivers_names() -> None:
    for code, name in clickhouse.REFUSED_CODES.items():
        if hasattr(ErrorCodes, name):  # 469 VIOLATED_CONSTRAINT is newer than the driver's list
            assert getattr(ErrorCodes, name) == code, name


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (53, "Code: 53. DB::Exception: Type mismatch in VALUES section", StoreRefused),
        (6, "Code: 6. DB::Exception: Cannot parse input: expected '\"'", StoreRefused),
        (469, "Code: 469. DB::Exception: Constraint `c` for table is violated", StoreRefused),
        (
            252,
            "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100)",
            StoreRefused,
        ),
        (
            252,
            "Code: 252. DB::Exception: Too many parts (300). Merges are processing significantly "
            "slower than inserts",
            StoreUnavailable,
        ),
        (241, "Code: 241. DB::Exception: Memory limit (total) exceeded", StoreUnavailable),
        (210, "Code: 210. Connection refused (127.0.0.1:9000)", StoreUnavailable),
        (209, "Code: 209. Timed out while reading from socket", StoreUnavailable),
        (
            60,
            "Code: 60. DB::Exception: Table footprint.user_footprint does not exist",
            StoreUnavailable,
        ),
        (None, "connection to clickhouse://x is closed", StoreUnavailable),
    ],
)
def test_clickhouse_errors(code: int | None, message: str, kind: type) -> None:
    error = clickhouse.classify(ClickHouseError(message, code))
    assert isinstance(error, kind)
    assert error is not None and error.message == message


def test_clickhouse_serialisation_errors_are_the_datas() -> None:
    try:
        try:
            struct.pack("<H", 70000)
        except struct.error as cause:
            raise ClickHouseError("cannot serialise rows for user_footprint") from cause
    except ClickHouseError as e:
        assert isinstance(clickhouse.classify(e), StoreRefused)


def test_clickhouse_network_errors_and_bugs() -> None:
    assert isinstance(clickhouse.classify(ConnectionRefusedError()), StoreUnavailable)
    assert isinstance(clickhouse.classify(EOFError("Unexpected EOF")), StoreUnavailable)
    assert clickhouse.classify(KeyError("link")) is None  # a bug of ours: not a store failure


@pytest.mark.parametrize(
    "error",
    [
        rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        rx.ResponseError("ERR value is not an integer or out of range"),
        rx.ResponseError(
            "Error running script (call to f_1): @user_script:3: WRONGTYPE Operation against a key"
        ),
        rx.DataError("Invalid input of type: 'NoneType'. Convert to a bytes, string, int or float"),
    ],
)
def test_redis_refuses_values(error: rx.RedisError) -> None:
    assert isinstance(redis.classify(error), StoreRefused)


@pytest.mark.parametrize(
    "error",
    [
        rx.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        rx.TimeoutError("Timeout reading from socket"),
        rx.BusyLoadingError("Redis is loading the dataset in memory"),
        rx.ReadOnlyError("You can't write against a read only replica."),
        rx.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        rx.ResponseError("BUSY Redis is busy running a script."),
        rx.ResponseError("MASTERDOWN Link with MASTER is down"),
    ],
)
def test_redis_outages_are_retried(error: rx.RedisError) -> None:
    assert isinstance(redis.classify(error), StoreUnavailable)
