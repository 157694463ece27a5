"""ClickHouse over the native protocol with clickhouse-driver (servers from 18.16 to today)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from footprint.clickhouse.base import (
    DEFAULT_DATABASE,
    ClickHouseError,
    check_block,
    check_identifier,
    redact,
    substitute_params,
    utc_rows,
)

if TYPE_CHECKING:
    from clickhouse_driver import Client

__all__ = ["NativeClickHouse"]


class NativeClickHouse:
    """A server reached over the native protocol; one driver connection per calling thread."""

    def __init__(self, url: str) -> None:
        from clickhouse_driver import Client
        from clickhouse_driver import errors as driver_errors
        from clickhouse_driver.util.helpers import parse_url

        self._client_cls, self._driver_errors, self.url = Client, driver_errors, url
        # The driver's own URL parsing: clickhouses://, ?secure=1, ?compression=lz4, timeouts…;
        # any other query parameter is a server setting.
        host, kwargs = parse_url(url)
        if not host:
            raise ValueError(f"no host in ClickHouse URL {redact(url)!r}")
        self.database = check_identifier(unquote(kwargs.pop("database", "")) or DEFAULT_DATABASE)
        self._settings: dict[str, Any] = dict(kwargs.pop("settings", {}))
        kwargs.setdefault("client_name", "footprint")
        self._kwargs: dict[str, Any] = {"host": host, **kwargs}
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()
        self._closed = False
        # The database may not exist yet, and a connection naming a missing database is refused.
        boot = Client(database="default", settings=dict(self._settings), **self._kwargs)
        try:
            self._wrap(boot.execute, f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
            info = boot.connection.server_info
            assert info is not None
            self._version = (info.version_major, info.version_minor, info.version_patch)
            from zoneinfo import ZoneInfo

            self._zone = ZoneInfo(info.timezone or "UTC")
        finally:
            boot.disconnect()
        if self._version < (19, 0):
            # 18.x refuses LowCardinality columns without it; newer servers reject the setting.
            self._settings.setdefault("allow_experimental_low_cardinality_type", 1)

    @property
    def server_version(self) -> tuple[int, ...]:
        """The server version, e.g. ``(18, 16, 1)``."""
        return self._version

    def _client(self) -> Client:
        if self._closed:
            raise ClickHouseError(f"connection to {redact(self.url)} is closed")
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._client_cls(
                database=self.database, settings=dict(self._settings), **self._kwargs
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _wrap(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._driver_errors.Error as e:
            message = getattr(e, "message", None) or str(e)
            # The server appends a C++ stack trace to every message; the first line is enough.
            first = re.split(r"\.?\s*Stack trace", message.strip())[0].strip()
            raise ClickHouseError(first, getattr(e, "code", None)) from e

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows."""
        rows = self._wrap(self._client().execute, substitute_params(sql, params))
        # A bare DateTime comes back naive, in the server's zone; DateTime('UTC') aware.
        return utc_rows(rows, self._zone)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` in one native-protocol block (the driver serialises the values)."""
        if not rows:
            return
        try:
            # Transposed in C, not by the driver value by value.
            data = list(zip(*rows, strict=True))
        except ValueError as e:
            raise ClickHouseError(f"cannot serialise rows for {table}: {e!r}") from e
        self.insert_columns(table, columns, data)

    def insert_columns(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> None:
        """Insert one block given column by column (the driver's columnar form)."""
        if not check_block(table, columns, data):
            return
        cols = ", ".join(check_identifier(c) for c in columns)
        query = f"INSERT INTO {check_identifier(table)} ({cols}) VALUES"
        try:
            # A list per column: the driver may convert the values in place.
            block = [values if isinstance(values, list) else list(values) for values in data]
            self._wrap(self._client().execute, query, block, columnar=True)
        except (TypeError, ValueError, AttributeError, OverflowError) as e:
            raise ClickHouseError(f"cannot serialise rows for {table}: {e!r}") from e

    def close(self) -> None:
        """Disconnect every thread's connection."""
        self._closed = True
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.disconnect()

    def __repr__(self) -> str:
        return f"<ClickHouse native {redact(self.url)}>"
