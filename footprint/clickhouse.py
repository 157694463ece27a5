"""ClickHouse behind one small interface: a server over the native protocol, or chdb in-process.

``connect(url)`` picks the backend from the URL scheme:

* ``clickhouse://user:pass@host:9000/db`` -> clickhouse-driver (any server from 18.16 to today);
* ``chdb:///abs/path`` or ``chdb://relative/path`` -> the embedded chdb engine on that data path.

Both backends return the same Python types: ints for (U)Int*, floats for Float* (a Float32 is
widened exactly as the native protocol does), str for String/LowCardinality(String), None for
NULL, uuid.UUID for UUID, date for Date, aware UTC datetimes for every DateTime, lists for
arrays and tuples for tuples. Query parameters use the ``%(name)s`` style and are escaped here,
client-side, identically for both backends. Methods are synchronous: call them through
``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import json
import math
import os
import re
import struct
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from clickhouse_driver import Client

__all__ = [
    "DEFAULT_DATABASE",
    "ClickHouse",
    "ClickHouseError",
    "chdb_open_path",
    "connect",
    "escape_param",
    "substitute_params",
]

DEFAULT_DATABASE = "footprint"

UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USE = re.compile(r"^\s*USE\s", re.IGNORECASE)
# `INSERT INTO t [(cols)] [SETTINGS …] VALUES|FORMAT` followed by inline data.
_INLINE_INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(?:TABLE\s+)?[\w.`\"]+\s*(?:\([^()]*\))?\s*"
    r"(?:SETTINGS\s+[^()]*?)?\b(?:VALUES|FORMAT)\b",
    re.IGNORECASE,
)


class ClickHouseError(RuntimeError):
    """A query failed on either backend; ``code`` is the ClickHouse error code when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@runtime_checkable
class ClickHouse(Protocol):
    """What callers may rely on, whichever backend is behind it."""

    url: str
    database: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement (``%(name)s`` parameters escaped client-side) and return its rows."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (one value per column, in order) into ``table`` as one batch."""
        ...

    def close(self) -> None:
        """Release the connection; idempotent."""
        ...

    @property
    def server_version(self) -> tuple[int, ...]:
        """The engine version, e.g. ``(18, 16, 1)`` or ``(26, 9, 2, 1)``."""
        ...


# --------------------------------------------------------------------------- parameters


# The same escape table clickhouse-driver uses, so a string is escaped identically whichever
# backend runs the query.
_ESCAPE_CHARS = {
    "\b": "\\b",
    "\f": "\\f",
    "\r": "\\r",
    "\n": "\\n",
    "\t": "\\t",
    "\0": "\\0",
    "\a": "\\a",
    "\v": "\\v",
    "\\": "\\\\",
    "'": "\\'",
}
_ESCAPE_TABLE = str.maketrans(_ESCAPE_CHARS)


def _utc_seconds(value: dt.datetime) -> int:
    # A naive datetime is taken as UTC: the project stores and computes every time in UTC.
    if value.tzinfo is None:
        return calendar.timegm(value.timetuple())
    return math.floor(value.timestamp())


def escape_param(value: Any) -> str:
    """Render one Python value as a ClickHouse SQL literal; unknown types raise TypeError."""
    if value is None:
        return "NULL"
    if isinstance(value, Enum):
        return escape_param(value.value)
    if isinstance(value, bool):  # before int: 18.16 has no true/false literals
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"cannot send non-finite Decimal {value!r} to ClickHouse")
        return str(value)
    if isinstance(value, str):
        return "'" + value.translate(_ESCAPE_TABLE) + "'"
    if isinstance(value, dt.datetime):
        # An explicit time zone: a bare string literal would be read in the server's or the
        # column's zone, which differ between servers.
        stamp = dt.datetime.fromtimestamp(_utc_seconds(value), UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"toDateTime('{stamp}', 'UTC')"
    if isinstance(value, dt.date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, uuid.UUID):
        return f"toUUID('{value}')"
    if isinstance(value, list):
        return "[" + ", ".join(escape_param(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(escape_param(v) for v in value)
        # `(x)` is just x in parentheses; tuple(x) is a one-element tuple on every version.
        return f"tuple({inner})" if len(value) == 1 else f"({inner})"
    raise TypeError(f"cannot send a {type(value).__name__} as a ClickHouse query parameter")


def substitute_params(sql: str, params: Mapping[str, Any] | None) -> str:
    """Substitute ``%(name)s`` parameters; with ``params=None`` the SQL is returned untouched."""
    if _INLINE_INSERT.match(sql):
        # Over the native protocol the server does not read data written into the query: it
        # waits for data blocks and the call hangs until the socket times out. chdb would accept
        # it, so refuse it on both backends alike.
        raise ValueError(
            "INSERT … VALUES/FORMAT with inline data is not supported by execute(): "
            "use insert(table, columns, rows) or INSERT … SELECT"
        )
    if params is None:
        return sql
    return sql % {key: escape_param(value) for key, value in params.items()}


def _check_identifier(name: str) -> str:
    # Table and column names are interpolated, not escaped: accept only plain identifiers
    # (optionally database-qualified).
    if not all(_IDENT.match(part) for part in name.split(".")) or name.count(".") > 1:
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def _error_code(message: str) -> int | None:
    match = re.search(r"Code: (\d+)", message)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- result types


def _split_type_args(inner: str) -> list[str]:
    """Split ``A, B(C, D), 'x,y'`` at top-level commas."""
    parts: list[str] = []
    depth = 0
    quote = False
    start = 0
    i = 0
    while i < len(inner):
        ch = inner[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == "'":
                quote = False
        elif ch == "'":
            quote = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
        i += 1
    tail = inner[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _unwrap(type_name: str) -> tuple[str, list[str]]:
    """``Array(Nullable(String))`` -> ``("Array", ["Nullable(String)"])``."""
    if "(" not in type_name or not type_name.endswith(")"):
        return type_name, []
    head, _, rest = type_name.partition("(")
    return head.strip(), _split_type_args(rest[:-1])


def _tuple_element_type(arg: str) -> str:
    # Named tuple elements look like ``name Type``.
    head, _, tail = arg.partition(" ")
    return tail.strip() if tail and "(" not in head and head[:1].islower() else arg


Converter = Callable[[Any], Any]


def _float32(value: Any) -> Any:
    if isinstance(value, str):
        value = float(value)
    return struct.unpack("f", struct.pack("f", value))[0]


def _json_datetime(value: Any) -> dt.datetime:
    # The session prints every DateTime as seconds since the epoch (date_time_output_format),
    # so the column's time zone does not matter.
    text = str(value)
    if "." in text:
        whole, _, frac = text.partition(".")
        micros = int((frac + "000000")[:6])
        sign = -1 if whole.startswith("-") else 1
        return _EPOCH + dt.timedelta(seconds=int(whole), microseconds=sign * micros)
    return _EPOCH + dt.timedelta(seconds=int(text))


def _json_converter(type_name: str) -> Converter | None:
    """How to turn one JSONCompact value of ``type_name`` into the driver's Python type."""
    head, args = _unwrap(type_name)
    if head in ("Nullable", "LowCardinality"):
        inner = _json_converter(args[0])
        if inner is None:
            return None
        return lambda v: None if v is None else inner(v)
    if head.startswith(("Int", "UInt")):
        return lambda v: v if isinstance(v, int) else int(v)
    if head == "Float32":
        return _float32
    if head.startswith(("Float", "BFloat")):
        return lambda v: v if isinstance(v, float) else float(v)
    if head.startswith("Decimal"):
        return lambda v: Decimal(str(v))
    if head.startswith("DateTime"):
        return _json_datetime
    if head in ("Date", "Date32"):
        return lambda v: dt.date.fromisoformat(v)
    if head == "UUID":
        return uuid.UUID
    if head == "Array" and args:
        item = _json_converter(args[0])
        if item is None:
            return None
        return lambda v: [None if x is None else item(x) for x in v]
    if head == "Tuple" and args:
        items = [_json_converter(_tuple_element_type(a)) for a in args]

        def convert_tuple(v: Any) -> tuple[Any, ...]:
            values = v.values() if isinstance(v, dict) else v
            return tuple(
                x if c is None or x is None else c(x) for c, x in zip(items, values, strict=True)
            )

        return convert_tuple
    return None


def _driver_converter(type_name: str, server_tz: str) -> Converter | None:
    """How to turn a clickhouse-driver value into the common type (only DateTimes differ)."""
    head, args = _unwrap(type_name)
    if head in ("Nullable", "LowCardinality"):
        inner = _driver_converter(args[0], server_tz)
        if inner is None:
            return None
        return lambda v: None if v is None else inner(v)
    if head.startswith("DateTime"):
        # The driver returns an aware datetime (pytz) for a DateTime('tz') column and a naive
        # one holding the server's wall-clock time for a bare DateTime.
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(server_tz)
        return lambda v: (v if v.tzinfo else v.replace(tzinfo=zone)).astimezone(UTC)
    if head == "Array" and args:
        item = _driver_converter(args[0], server_tz)
        if item is None:
            return None
        return lambda v: [None if x is None else item(x) for x in v]
    if head == "Tuple" and args:
        items = [_driver_converter(_tuple_element_type(a), server_tz) for a in args]
        if all(c is None for c in items):
            return None
        return lambda v: tuple(
            x if c is None or x is None else c(x) for c, x in zip(items, v, strict=True)
        )
    return None


def _apply(
    rows: Sequence[Sequence[Any]], converters: list[Converter | None]
) -> list[tuple[Any, ...]]:
    if all(c is None for c in converters):
        return [tuple(row) for row in rows]
    pairs = list(enumerate(converters))
    out = []
    for row in rows:
        values = list(row)
        for i, conv in pairs:
            if conv is not None and values[i] is not None:
                values[i] = conv(values[i])
        out.append(tuple(values))
    return out


# --------------------------------------------------------------------------- clickhouse-driver


class _DriverClickHouse:
    """A server reached over the native protocol; one driver connection per calling thread."""

    def __init__(self, url: str) -> None:
        from clickhouse_driver import Client
        from clickhouse_driver import errors as driver_errors

        self._client_cls = Client
        self._driver_errors = driver_errors
        self.url = url
        from clickhouse_driver.util.helpers import parse_url

        # The driver's own URL parsing: clickhouses://, ?secure=1, ?compression=lz4, timeouts…;
        # any other query parameter is a server setting.
        host, kwargs = parse_url(url)
        if not host:
            raise ValueError(f"no host in ClickHouse URL {_redact(url)!r}")
        self.database = unquote(kwargs.pop("database", "")) or DEFAULT_DATABASE
        _check_identifier(self.database)
        self._settings: dict[str, Any] = dict(kwargs.pop("settings", {}))
        kwargs.setdefault("client_name", "footprint")
        self._kwargs: dict[str, Any] = {"host": host, **kwargs}
        self._local = threading.local()
        self._clients: list[Client] = []
        self._clients_lock = threading.Lock()
        self._closed = False

        # The database may not exist yet, and a connection naming a missing database is refused.
        boot = Client(database="default", settings=dict(self._settings), **self._kwargs)
        try:
            self._wrap(boot.execute, f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
            info = boot.connection.server_info
            assert info is not None
            self._version: tuple[int, ...] = (
                info.version_major,
                info.version_minor,
                info.version_patch,
            )
            self._server_tz: str = info.timezone or "UTC"
        finally:
            boot.disconnect()
        if self._version < (19, 0):
            # 18.x refuses LowCardinality columns without it; newer servers dropped the setting
            # and reject it as unknown, so it is sent only where it is needed.
            self._settings.setdefault("allow_experimental_low_cardinality_type", 1)

    @property
    def server_version(self) -> tuple[int, ...]:
        """The server version, e.g. ``(18, 16, 1)``."""
        return self._version

    def _client(self) -> Client:
        if self._closed:
            raise ClickHouseError(f"connection to {_redact(self.url)} is closed")
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._client_cls(
                database=self.database, settings=dict(self._settings), **self._kwargs
            )
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _wrap(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._driver_errors.Error as e:
            message = getattr(e, "message", None) or str(e)
            # The server appends a C++ stack trace to every message; the first line is enough.
            first = message.strip().split("\nStack trace")[0].strip()
            raise ClickHouseError(first, getattr(e, "code", None)) from e

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows in the common Python types."""
        query = substitute_params(sql, params)
        result = self._wrap(self._client().execute, query, with_column_types=True)
        rows, columns = result
        if not columns:
            return [tuple(r) for r in rows]
        converters = [_driver_converter(t, self._server_tz) for _, t in columns]
        return _apply(rows, converters)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` in one native-protocol block."""
        if not rows:
            return
        cols = ", ".join(_check_identifier(c) for c in columns)
        query = f"INSERT INTO {_check_identifier(table)} ({cols}) VALUES"
        try:
            self._wrap(self._client().execute, query, [tuple(r) for r in rows])
        except (TypeError, ValueError, AttributeError, struct.error) as e:
            # The driver serialises values itself; a wrong type surfaces as a bare Python error.
            raise ClickHouseError(f"cannot serialise rows for {table}: {e!r}") from e

    def close(self) -> None:
        """Disconnect every thread's connection."""
        self._closed = True
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.disconnect()

    def __repr__(self) -> str:
        return f"<ClickHouse native {_redact(self.url)}>"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


# --------------------------------------------------------------------------- chdb


# Settings for the shared chdb session: DateTimes as epoch seconds (zone-free parsing), 64-bit
# integers as JSON numbers, NaN/Inf and decimals as exact strings, invalid UTF-8 replaced so the
# output always parses as JSON.
_CHDB_SESSION_SETTINGS = (
    "SET date_time_output_format = 'unix_timestamp', "
    "output_format_json_quote_64bit_integers = 0, "
    "output_format_json_quote_denormals = 1, "
    "output_format_json_quote_decimals = 1, "
    "output_format_json_validate_utf8 = 1"
)


class _ChdbShared:
    """The one chdb session of this process, shared by every ``connect('chdb://…')``."""

    def __init__(self, path: str) -> None:
        import chdb.session

        self.path = path
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.refs = 0
        self.current_database = ""
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            self.session = chdb.session.Session(path)
        except Exception as e:
            message = str(e).strip()
            # chdb often reports a locked path only as "Error initializing EmbeddedServer".
            hint = (
                " (is another process using this path? chdb allows one process per data path)"
                if "Cannot lock file" in message or "EmbeddedServer" in message
                else ""
            )
            raise ClickHouseError(f"cannot open chdb at {path}: {message}{hint}") from e
        self.session.query(_CHDB_SESSION_SETTINGS)
        version = self.query_text("SELECT version()").strip().strip('"')
        self.version = tuple(int(p) for p in version.split(".") if p.isdigit())

    def query_bytes(self, sql: str, fmt: str) -> bytes:
        with self.lock:
            try:
                result = self.session.query(sql, fmt)
            except Exception as e:  # chdb raises ChdbError / RuntimeError with the server text
                message = str(e).strip()
                # chdb 4.4 keeps what a query stopped mid-way (e.g. by max_execution_time) had
                # written, and prepends it to the next query's output: a throwaway query takes it.
                with contextlib.suppress(Exception):
                    self.session.query("SELECT 1", "TSV")
                raise ClickHouseError(message, _error_code(message)) from e
        return bytes(result.bytes()) if result is not None else b""

    def query_text(self, sql: str) -> str:
        return self.query_bytes(sql, "TSVRaw").decode()

    def use(self, database: str) -> None:
        # Handles on one session may name different databases; switch only when needed.
        with self.lock:
            if self.current_database != database:
                self.query_bytes(f"USE `{database}`", "TSV")
                self.current_database = database


_chdb_shared: _ChdbShared | None = None
_chdb_registry_lock = threading.Lock()


def _acquire_chdb(path: str) -> _ChdbShared:
    global _chdb_shared
    with _chdb_registry_lock:
        shared = _chdb_shared
        if shared is not None and shared.pid != os.getpid():
            # A forked child inherits the registry but not a usable engine.
            shared = _chdb_shared = None
        if shared is None:
            shared = _chdb_shared = _ChdbShared(path)
        elif shared.path != path:
            raise ClickHouseError(
                f"chdb is already open on {shared.path} in this process; it cannot also open "
                f"{path} (one embedded engine per process, one data path per engine)"
            )
        shared.refs += 1
        return shared


def chdb_open_path() -> str | None:
    """The data path of this process's open chdb session, or None when none is open."""
    with _chdb_registry_lock:
        shared = _chdb_shared
        if shared is None or shared.pid != os.getpid():
            return None
        return shared.path


def _release_chdb(shared: _ChdbShared) -> None:
    global _chdb_shared
    with _chdb_registry_lock:
        shared.refs -= 1
        if shared.refs > 0 or _chdb_shared is not shared:
            return
        _chdb_shared = None
        # Closing releases the path, so a later connect() may open another one.
        with shared.lock:
            shared.session.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # Epoch seconds: unambiguous whatever the column's time zone.
        return _utc_seconds(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot insert a {type(value).__name__} into ClickHouse")


# Compact, and non-ASCII kept as UTF-8: smaller and faster to parse for the engine. NaN/Inf are
# refused here (json would write NaN, which ClickHouse does not read) and sent as strings instead.
_encode_row = json.JSONEncoder(
    default=_json_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False
).encode

_JSON_NATIVE = (str, int, float, list, dict, type(None))


def _to_json(value: Any) -> Any:
    if isinstance(value, _JSON_NATIVE):
        return value
    return _json_default(value)


def _nan_safe(row: Sequence[Any]) -> list[Any]:
    # ClickHouse reads "nan", "inf" and "-inf" in quotes as floats.
    return [
        ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
        if isinstance(v, float) and not math.isfinite(v)
        else v
        for v in row
    ]


def _json_lines(table: str, width: int, rows: Sequence[Sequence[Any]]) -> str:
    """Rows as JSONCompactEachRow text, one JSON array per line."""
    # Columns whose first value is not a JSON type (datetimes, UUIDs) are converted in a loop here:
    # the encoder's per-value default() hook is about three times slower. Later rows holding such
    # a value in another column still go through the hook.
    special = [i for i, v in enumerate(rows[0]) if not isinstance(v, _JSON_NATIVE)]
    lines: list[str] = []
    for row in rows:
        if len(row) != width:
            raise ClickHouseError(
                f"row has {len(row)} values for {width} columns of {table}: {row!r}"
            )
        values = list(row)
        try:
            for i in special:
                values[i] = _to_json(values[i])
            try:
                lines.append(_encode_row(values))
            except ValueError:
                lines.append(_encode_row(_nan_safe(values)))
        except TypeError as e:
            raise ClickHouseError(f"cannot serialise rows for {table}: {e}") from e
    return "\n".join(lines)


class _ChdbClickHouse:
    """The embedded chdb engine; every call is serialised on the process-wide session lock."""

    def __init__(self, url: str, path: str, database: str) -> None:
        self.url = url
        self.database = _check_identifier(database)
        self._shared: _ChdbShared | None = _acquire_chdb(path)
        try:
            self._shared.query_bytes(f"CREATE DATABASE IF NOT EXISTS `{database}`", "TSV")
            self._shared.use(database)
        except BaseException:
            self.close()
            raise

    @property
    def server_version(self) -> tuple[int, ...]:
        """The chdb engine version, e.g. ``(26, 9, 2, 1)``."""
        return self._session().version

    @property
    def path(self) -> str:
        """The chdb data path."""
        return self._session().path

    def _session(self) -> _ChdbShared:
        if self._shared is None:
            raise ClickHouseError(f"connection to {self.url} is closed")
        return self._shared

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows in the common Python types."""
        query = substitute_params(sql, params)
        shared = self._session()
        with shared.lock:
            shared.use(self.database)
            raw = shared.query_bytes(query, "JSONCompact")
            if _USE.match(query):
                shared.current_database = ""  # the caller switched database itself
        if not raw.strip():
            return []
        doc = json.loads(raw)
        converters = [_json_converter(col["type"]) for col in doc["meta"]]
        return _apply(doc["data"], converters)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` as one JSONCompactEachRow block."""
        if not rows:
            return
        cols = ", ".join(_check_identifier(c) for c in columns)
        data = _json_lines(table, len(columns), rows)
        # null_as_default=0: a None for a non-Nullable column is an error, as over the native
        # protocol, rather than silently becoming '' or 0.
        query = (
            f"INSERT INTO {_check_identifier(table)} ({cols}) "
            "SETTINGS input_format_null_as_default = 0 FORMAT JSONCompactEachRow\n" + data
        )
        shared = self._session()
        with shared.lock:
            shared.use(self.database)
            shared.query_bytes(query, "TSV")

    def close(self) -> None:
        """Drop this handle; the session closes when the last handle on it does."""
        shared, self._shared = self._shared, None
        if shared is not None:
            _release_chdb(shared)

    def __repr__(self) -> str:
        return f"<ClickHouse chdb {self.url}>"


# --------------------------------------------------------------------------- connect


def _chdb_location(url: str) -> tuple[str, str]:
    """``chdb:///abs/p?database=x`` -> (absolute path, database)."""
    rest = url[len("chdb://") :]
    raw, _, query = rest.partition("?")
    if not raw:
        raise ValueError(f"no data path in chdb URL {url!r}")
    options = dict(parse_qsl(query))
    database = options.pop("database", DEFAULT_DATABASE)
    if options:
        raise ValueError(f"unknown chdb URL options {sorted(options)} in {url!r}")
    path = Path(unquote(raw)).expanduser()
    return str(path.resolve()), database


def connect(url: str) -> ClickHouse:
    """Open ClickHouse at ``url``: ``clickhouse://…`` (native protocol) or ``chdb://path``."""
    scheme = urlsplit(url).scheme
    if scheme in ("clickhouse", "clickhouses"):
        return _DriverClickHouse(url)
    if scheme == "chdb":
        path, database = _chdb_location(url)
        return _ChdbClickHouse(url, path, database)
    raise ValueError(
        f"unsupported ClickHouse URL scheme {scheme + '://' if scheme else '(none)'} in "
        f"{_redact(url)!r}: use clickhouse://user:pass@host:port/db or chdb:///path"
    )
