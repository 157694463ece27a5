"""Apply the schema: every ``sql/<db>/*.sql`` file in filename order, statement by statement.

Each file must be idempotent (``IF NOT EXISTS``): the runner keeps no version table and simply
re-applies everything at start-up.
"""

from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from footprint.clickhouse import ClickHouse

__all__ = [
    "SQL_DIR",
    "apply_clickhouse",
    "apply_postgres",
    "split_statements",
    "sql_files",
]

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

Dialect = Literal["clickhouse", "postgres"]

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(sql: str, dialect: Dialect = "clickhouse") -> list[str]:
    """Split a script on top-level ``;``, dropping comments and empty statements.

    Semicolons inside '…' strings, "…" and `…` identifiers, comments and (for Postgres)
    $tag$…$tag$ bodies do not split. ClickHouse strings take backslash escapes; Postgres
    strings take them only in the E'…' form.
    """
    statements: list[str] = []
    current: list[str] = []
    i = 0
    n = len(sql)

    def flush() -> None:
        text = "".join(current).strip()
        if text:
            statements.append(text)
        current.clear()

    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            end = sql.find("\n", i)
            i = n if end < 0 else end  # keep the newline: it separates the tokens around it
            continue
        if ch == "/" and nxt == "*":
            end = sql.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated /* comment")
            current.append(" ")
            i = end + 2
            continue
        if ch == ";":
            flush()
            i += 1
            continue
        if ch in "'\"`":
            backslash = ch != '"' and (
                dialect == "clickhouse" or (ch == "'" and _is_escape_string_prefix(sql, i))
            )
            end = _end_of_quoted(sql, i, ch, backslash)
            current.append(sql[i:end])
            i = end
            continue
        if ch == "$" and dialect == "postgres":
            match = _DOLLAR_TAG.match(sql, i)
            # `$1` parameters and identifiers containing `$` are not dollar quotes.
            if match and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                tag = match.group(0)
                end = sql.find(tag, match.end())
                if end < 0:
                    raise ValueError(f"unterminated {tag} quote")
                current.append(sql[i : end + len(tag)])
                i = end + len(tag)
                continue
        current.append(ch)
        i += 1
    flush()
    return statements


def _is_escape_string_prefix(sql: str, quote_at: int) -> bool:
    # E'…' (Postgres escape string): an E/e right before the quote that is not the end of a word.
    if quote_at == 0 or sql[quote_at - 1] not in "Ee":
        return False
    before = sql[quote_at - 2] if quote_at >= 2 else " "
    return not (before.isalnum() or before == "_")


def _end_of_quoted(sql: str, start: int, quote: str, backslash: bool) -> int:
    """Index just past the quoted token opening at ``start``; a doubled quote is an escape."""
    i = start + 1
    n = len(sql)
    while i < n:
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    raise ValueError(f"unterminated {quote} quote starting at offset {start}")


def sql_files(db: str, sql_dir: Path | None = None) -> list[Path]:
    """The ``<sql_dir>/<db>/*.sql`` files (db: "clickhouse" or "postgres"), in filename order."""
    return sorted(((sql_dir or SQL_DIR) / db).glob("*.sql"), key=lambda p: p.name)


# `ALTER TABLE t ADD COLUMN IF NOT EXISTS c …`, one column per statement.
_ADD_COLUMN = re.compile(
    r"^\s*ALTER\s+TABLE\s+(?P<table>\w+)\s+ADD\s+COLUMN\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)"
    r"(?P<column>`[^`]+`|\w+)\s",
    re.IGNORECASE,
)
_SYNTAX_ERROR = 62


def _execute_clickhouse(client: ClickHouse, statement: str) -> None:
    from footprint.clickhouse import ClickHouseError

    try:
        client.execute(statement)
        return
    except ClickHouseError as e:
        match = _ADD_COLUMN.match(statement)
        if match is None or e.code != _SYNTAX_ERROR:
            raise
    # ClickHouse 18.16 cannot parse ADD COLUMN IF NOT EXISTS: look the column up instead.
    column = match["column"].strip("`")
    found = client.execute(
        "SELECT count() FROM system.columns "
        "WHERE database = currentDatabase() AND table = %(table)s AND name = %(column)s",
        {"table": match["table"], "column": column},
    )
    if not found[0][0]:
        client.execute(statement[: match.start("ine")] + statement[match.end("ine") :])


def apply_clickhouse(client: ClickHouse, sql_dir: Path | None = None) -> list[str]:
    """Apply ``sql/clickhouse/*.sql`` through ``client``; returns the file names applied."""
    applied = []
    for path in sql_files("clickhouse", sql_dir):
        for statement in split_statements(path.read_text(encoding="utf-8"), "clickhouse"):
            try:
                _execute_clickhouse(client, statement)
            except Exception as e:
                raise RuntimeError(f"{path.name}: {e}\n--- statement:\n{statement}") from e
        applied.append(path.name)
        log.debug("applied %s", path.name)
    return applied


# One lock id for every Footprint process: the API and the workers may start together.
_PG_LOCK_ID = zlib.crc32(b"footprint.migrate")


def apply_postgres(conninfo: str, sql_dir: Path | None = None) -> list[str]:
    """Apply ``sql/postgres/*.sql``, each file in one transaction; returns the file names."""
    import psycopg

    files = sql_files("postgres", sql_dir)
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Concurrent `CREATE … IF NOT EXISTS` can still collide in the catalog; serialise.
        conn.execute("SELECT pg_advisory_lock(%s)", (_PG_LOCK_ID,))
        try:
            for path in files:
                statements = split_statements(path.read_text(encoding="utf-8"), "postgres")
                with conn.transaction():
                    for statement in statements:
                        try:
                            # No parameters: psycopg leaves `%` in the SQL alone.
                            conn.execute(statement.encode())
                        except psycopg.Error as e:
                            raise RuntimeError(
                                f"{path.name}: {e}\n--- statement:\n{statement}"
                            ) from e
                applied.append(path.name)
                log.debug("applied %s", path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_PG_LOCK_ID,))
    return applied
