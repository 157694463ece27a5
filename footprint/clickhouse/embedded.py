"""ClickHouse embedded in the process with chdb: one engine per process, on one data path."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import io
import json
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from footprint.clickhouse.base import (
    DEFAULT_DATABASE,
    UTC,
    ClickHouseError,
    check_block,
    check_identifier,
    error_code,
    substitute_params,
    utc_rows,
)

__all__ = ["ChdbClickHouse", "chdb_location", "chdb_open_path"]


# The chdb paths open in this process: chdb runs one engine per process, on one data path.
_chdb_open: Counter[str] = Counter()
_chdb_lock = threading.Lock()


def chdb_open_path() -> str | None:
    """The data path of this process's open chdb connections, or None when none is open."""
    with _chdb_lock:
        return next((path for path, n in _chdb_open.items() if n > 0), None)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):  # epoch seconds: the same instant in any column zone
        if value.tzinfo is None:
            return calendar.timegm(value.timetuple())
        return int(value.timestamp() // 1)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot insert a {type(value).__name__} into ClickHouse")


_JSON_NATIVE = (str, int, float, list, dict, type(None))
_encode_row = json.JSONEncoder(
    default=_json_value, ensure_ascii=False, separators=(",", ":")
).encode


class ChdbClickHouse:
    """The embedded chdb engine: a connection of its own on the process's data path."""

    def __init__(self, url: str, path: str, database: str) -> None:
        import chdb

        self.url, self.path, self.database = url, path, check_identifier(database)
        Path(path).mkdir(parents=True, exist_ok=True)
        with _chdb_lock:
            try:
                self._conn: Any = chdb.connect(path)
            except Exception as e:
                message = str(e).strip()
                if "already initialized with path" in message:
                    message = f"chdb is already open on another path in this process: {message}"
                elif "Cannot lock file" in message or "EmbeddedServer" in message:
                    message += " (is another process using this path? one process per path)"
                raise ClickHouseError(f"cannot open chdb at {path}: {message}") from e
            _chdb_open[path] += 1
        self._lock = threading.Lock()
        try:
            self._query(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            self._query(f"USE `{database}`")
            version = self._query("SELECT version()", "TSVRaw").decode().strip()
        except BaseException:
            self.close()
            raise
        self._version = tuple(int(p) for p in version.split(".") if p.isdigit())

    @property
    def server_version(self) -> tuple[int, ...]:
        """The chdb engine version, e.g. ``(26, 9, 2, 1)``."""
        return self._version

    def _query(self, sql: str, fmt: str = "TSV") -> bytes:
        with self._lock:
            if self._conn is None:
                raise ClickHouseError(f"connection to {self.url} is closed")
            try:
                result = self._conn.query(sql, fmt)
            except Exception as e:  # chdb raises ChdbError / RuntimeError with the server text
                message = str(e).strip()
                # chdb 4.4 keeps what a query stopped mid-way (e.g. by max_execution_time) had
                # written, and prepends it to the next query's output: a throwaway query takes it.
                with contextlib.suppress(Exception):
                    self._conn.query("SELECT 1", "TSV")
                raise ClickHouseError(message, error_code(message)) from e
        return bytes(result.bytes()) if result is not None else b""

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows, read by pyarrow from Parquet."""
        import pyarrow.parquet as pq

        raw = self._query(substitute_params(sql, params), "Parquet")
        if not raw:
            return []
        table = pq.read_table(io.BytesIO(raw))
        rows = [tuple(r.values()) for r in table.to_pylist()]
        return utc_rows(rows, UTC)

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        """Insert one block given column by column (sent as rows: the format is row-wise)."""
        if check_block(table, columns, data):
            self.insert(table, columns, list(zip(*data, strict=True)))

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` as one JSONCompactEachRow block."""
        if not rows:
            return
        width = len(columns)
        # Columns whose first value is not JSON (datetimes, UUIDs) are converted here: the
        # encoder's per-value default() hook is about three times slower.
        special = [i for i, v in enumerate(rows[0]) if not isinstance(v, _JSON_NATIVE)]
        try:
            lines = []
            for row in rows:
                if len(row) != width:
                    raise TypeError(f"a row has {len(row)} values for {width} columns: {row!r}")
                values = list(row)
                for i in special:
                    if not isinstance(values[i], _JSON_NATIVE):
                        values[i] = _json_value(values[i])
                lines.append(_encode_row(values))
        except (TypeError, ValueError) as e:
            raise ClickHouseError(f"cannot serialise rows for {table}: {e}") from e
        cols = ", ".join(check_identifier(c) for c in columns)
        # null_as_default=0: None for a non-Nullable column is an error, as over the native
        # protocol, rather than silently '' or 0. NaN and infinities are read as JSON's words.
        self._query(
            f"INSERT INTO {check_identifier(table)} ({cols}) SETTINGS "
            "input_format_null_as_default = 0 FORMAT JSONCompactEachRow\n" + "\n".join(lines)
        )

    def close(self) -> None:
        """Close this connection (idempotent); the engine stops with the last one."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            with _chdb_lock:
                _chdb_open[self.path] -= 1

    def __repr__(self) -> str:
        return f"<ClickHouse chdb {self.url}>"


def chdb_location(url: str) -> tuple[str, str]:
    """``chdb:///abs/p?database=x`` -> (absolute path, database)."""
    raw, _, query = url[len("chdb://") :].partition("?")
    if not raw:
        raise ValueError(f"no data path in chdb URL {url!r}")
    options = dict(parse_qsl(query))
    database = options.pop("database", DEFAULT_DATABASE)
    if options:
        raise ValueError(f"unknown chdb URL options {sorted(options)} in {url!r}")
    return str(Path(unquote(raw)).expanduser().resolve()), database
