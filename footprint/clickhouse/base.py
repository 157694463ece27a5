"""What both ClickHouse backends share: the contract, errors, parameters, result times."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from clickhouse_driver.util.escape import escape_params

__all__ = [
    "DEFAULT_DATABASE",
    "UTC",
    "ClickHouse",
    "ClickHouseError",
    "check_block",
    "check_identifier",
    "error_code",
    "redact",
    "substitute_params",
    "utc_rows",
]

DEFAULT_DATABASE = "footprint"
UTC = dt.UTC
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# INSERT … VALUES/FORMAT with its data in the query text.
_INLINE_INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(TABLE\s+)?[\w.`\"]+(\s*\([^)]*\))?\s*(SETTINGS\s+.*?\s)?"
    r"\s*(VALUES|FORMAT)\b",
    re.IGNORECASE | re.DOTALL,
)


class ClickHouseError(RuntimeError):
    """A query or insert failed; ``code`` is ClickHouse's error code when there is one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@runtime_checkable
class ClickHouse(Protocol):
    """What the API, the worker and the migrations need from ClickHouse."""

    url: str
    database: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows (one block)."""
        ...

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        """Insert one block given column by column: ``data[i]`` holds the values of
        ``columns[i]``, all of one length."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...

    @property
    def server_version(self) -> tuple[int, ...]:
        """The server (or chdb engine) version."""
        ...


def _param(value: Any) -> Any:
    # What the driver's escaping does not render as this module promises: aware datetimes (it
    # would convert them to the *server's* zone) and booleans (True, which 18.16 cannot read).
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, list | tuple):
        return type(value)(_param(v) for v in value)
    return value


# The driver's escaping asks the server's time zone only to convert aware datetimes, which
# _param has already made naive UTC.
_CONTEXT = SimpleNamespace(server_info=SimpleNamespace(get_timezone=lambda: "UTC"))


def substitute_params(sql: str, params: Mapping[str, Any] | None) -> str:
    """Substitute ``%(name)s`` parameters; with ``params=None`` the SQL is returned untouched."""
    if _INLINE_INSERT.match(sql):
        # Over the native protocol the server does not read data written into the query: it
        # waits for data blocks and the call hangs. Refuse it on both backends alike.
        raise ValueError(
            "INSERT … VALUES/FORMAT with inline data is not supported by execute(): "
            "use insert(table, columns, rows) or INSERT … SELECT"
        )
    if params is None:
        return sql
    return sql % escape_params({k: _param(v) for k, v in params.items()}, _CONTEXT)


def check_identifier(name: str) -> str:
    # Table and column names are interpolated: accept only plain (database-qualified) names.
    if not all(_IDENT.match(part) for part in name.split(".")) or name.count(".") > 1:
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def error_code(message: str) -> int | None:
    match = re.search(r"Code: (\d+)", message)
    return int(match.group(1)) if match else None


def utc_rows(rows: Sequence[Sequence[Any]], naive_zone: dt.tzinfo) -> list[tuple[Any, ...]]:
    """Rows with every datetime as an aware UTC datetime (a naive one is in ``naive_zone``)."""
    if not rows:
        return []
    times = [i for i, v in enumerate(rows[0]) if isinstance(v, dt.datetime)]
    if not times:
        return [tuple(r) for r in rows]
    out = []
    for row in rows:
        values = list(row)
        for i in times:
            v = values[i]
            if v is not None:
                values[i] = (v if v.tzinfo else v.replace(tzinfo=naive_zone)).astimezone(UTC)
        out.append(tuple(values))
    return out


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def check_block(table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]) -> bool:
    """Whether ``data`` (one sequence per column) holds rows to insert; ``ClickHouseError``
    unless it has one column per name, all of one length."""
    lengths = {len(values) for values in data}
    if len(data) != len(columns) or len(lengths) > 1:
        raise ClickHouseError(
            f"cannot serialise rows for {table}: {len(data)} columns of lengths "
            f"{sorted(lengths)} for {len(columns)} names"
        )
    return bool(data) and lengths != {0}
