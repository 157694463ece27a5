"""ClickHouse behind one small interface: a server over the native protocol, or chdb in-process.

``connect(url)`` picks the backend from the URL scheme:

* ``clickhouse://user:pass@host:9000/db`` -> clickhouse-driver (any server from 18.16 to today);
* ``chdb:///abs/path`` or ``chdb://relative/path`` -> the embedded chdb engine on that data path.

Query parameters use the ``%(name)s`` style and are rendered by clickhouse-driver's own
escaping on both backends (an 18.16 server has no server-side parameters). A datetime
parameter is sent as its UTC wall-clock time, ``'2024-01-01 00:00:00'``: write
``toDateTime(%(t)s, 'UTC')`` (an 18.16 server cannot compare a key column with a string).
Booleans are sent as 1/0.

Both backends answer with the same Python types, as their libraries convert them: ints,
floats, str, None, uuid.UUID, date, lists; every datetime as an aware UTC datetime. The server's
come from the driver; chdb's as Parquet read by pyarrow. Methods are synchronous: call them
through ``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from footprint.clickhouse.base import (
    DEFAULT_DATABASE,
    ClickHouse,
    ClickHouseError,
    redact,
    substitute_params,
)
from footprint.clickhouse.embedded import chdb_open_path

__all__ = [
    "DEFAULT_DATABASE",
    "ClickHouse",
    "ClickHouseError",
    "chdb_open_path",
    "connect",
    "substitute_params",
]


def connect(url: str) -> ClickHouse:
    """Open ClickHouse at ``url``: ``clickhouse://…`` (native protocol) or ``chdb://path``."""
    scheme = urlsplit(url).scheme
    if scheme in ("clickhouse", "clickhouses"):
        from footprint.clickhouse.native import NativeClickHouse

        return NativeClickHouse(url)
    if scheme == "chdb":
        from footprint.clickhouse.embedded import ChdbClickHouse, chdb_location

        return ChdbClickHouse(url, *chdb_location(url))
    raise ValueError(
        f"unsupported ClickHouse URL scheme {scheme + '://' if scheme else '(none)'} in "
        f"{redact(url)!r}: use clickhouse://user:pass@host:port/db or chdb:///path"
    )
