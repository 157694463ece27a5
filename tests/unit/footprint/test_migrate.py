"""The SQL statement splitter and file discovery of footprint.migrate (no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from footprint.migrate import SQL_DIR, split_statements, sql_files


def test_splits_on_top_level_semicolons_and_drops_empty_statements() -> None:
    sql = "CREATE TABLE a (x UInt8);\n\n;  ;\nCREATE TABLE b (y UInt8)\n;\n"
    assert split_statements(sql) == ["CREATE TABLE a (x UInt8)", "CREATE TABLE b (y UInt8)"]


def test_last_statement_needs_no_semicolon() -> None:
    assert split_statements("SELECT 1; SELECT 2") == ["SELECT 1", "SELECT 2"]


def test_comment_lines_and_trailing_comments_are_dropped() -> None:
    sql = """
    -- a header; with a semicolon
    -- and another line
    SELECT 1; -- trailing; comment
    /* block; comment
       over lines */
    SELECT /* inline */ 2;
    -- only a comment at the end;
    """
    assert [" ".join(s.split()) for s in split_statements(sql)] == ["SELECT 1", "SELECT 2"]


def test_a_comment_only_script_has_no_statements() -> None:
    assert split_statements("-- nothing here;\n/* nor; here */\n") == []


def test_comment_markers_do_not_glue_tokens() -> None:
    assert split_statements("SELECT 1--x\nAS a") == ["SELECT 1\nAS a"]
    assert split_statements("SELECT 1/*x*/AS a") == ["SELECT 1 AS a"]


def test_semicolons_and_comment_markers_inside_quotes_are_kept() -> None:
    sql = (
        "INSERT INTO t SELECT 'a;b', '-- not a comment', '/* nor this */';"
        'SELECT "we;ird", `back;tick` FROM t'
    )
    assert split_statements(sql) == [
        "INSERT INTO t SELECT 'a;b', '-- not a comment', '/* nor this */'",
        'SELECT "we;ird", `back;tick` FROM t',
    ]


def test_clickhouse_strings_take_backslash_and_doubled_quotes() -> None:
    sql = r"SELECT 'it\'s; fine', 'it''s; fine', 'ends in backslash\\'; SELECT 2"
    assert split_statements(sql) == [
        r"SELECT 'it\'s; fine', 'it''s; fine', 'ends in backslash\\'",
        "SELECT 2",
    ]


def test_postgres_strings_take_backslash_only_in_e_strings() -> None:
    # In standard Postgres strings a backslash is an ordinary character.
    sql = r"SELECT 'C:\'; SELECT E'it\'s; fine'; SELECT 'x'"
    assert split_statements(sql, "postgres") == [
        r"SELECT 'C:\'",
        r"SELECT E'it\'s; fine'",
        "SELECT 'x'",
    ]
    # A word merely ending in e is not an E'' prefix.
    assert split_statements(r"SELECT name'\'; SELECT 1", "postgres") == [
        r"SELECT name'\'",
        "SELECT 1",
    ]


def test_postgres_dollar_quoted_bodies_are_kept_whole() -> None:
    sql = """
    CREATE FUNCTION f() RETURNS trigger AS $$
    BEGIN
        NEW.x := 1; RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;
    DO $body$ BEGIN PERFORM 1; END $body$;
    SELECT $1, a$b FROM t;
    """
    statements = split_statements(sql, "postgres")
    assert len(statements) == 3
    assert statements[0].startswith("CREATE FUNCTION") and statements[0].endswith("plpgsql")
    assert "NEW.x := 1; RETURN NEW;" in statements[0]
    assert statements[1] == "DO $body$ BEGIN PERFORM 1; END $body$"
    assert statements[2] == "SELECT $1, a$b FROM t"


def test_dollar_signs_are_plain_characters_in_clickhouse() -> None:
    assert split_statements("SELECT '$$'; SELECT 1") == ["SELECT '$$'", "SELECT 1"]


@pytest.mark.parametrize(
    "sql", ["SELECT 'open", 'SELECT "open', "SELECT `open", "SELECT 1 /* open", "SELECT 'a\\'"]
)
def test_unterminated_quotes_and_comments_raise(sql: str) -> None:
    with pytest.raises(ValueError, match="unterminated"):
        split_statements(sql)


def test_unterminated_dollar_quote_raises() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        split_statements("DO $$ BEGIN", "postgres")


def test_sql_files_are_in_filename_order(tmp_path: Path) -> None:
    d = tmp_path / "clickhouse"
    d.mkdir()
    for name in ("010_c.sql", "002_b.sql", "001_a.sql", "notes.txt"):
        (d / name).write_text("SELECT 1")
    assert [p.name for p in sql_files("clickhouse", tmp_path)] == [
        "001_a.sql",
        "002_b.sql",
        "010_c.sql",
    ]
    assert sql_files("postgres", tmp_path) == []


def test_the_shipped_clickhouse_files_split_into_their_statements() -> None:
    files = sql_files("clickhouse")
    assert [p.name for p in files][:2] == [
        "001_user_footprint.sql",
        "002_user_footprint_minute.sql",
    ]
    statements = [s for p in files for s in split_statements(p.read_text())]
    created = [
        re.match(r"CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS (\w+)", s) for s in statements
    ]
    assert [m.group(2) if m else None for m in created][:3] == [
        "user_footprint",
        "user_footprint_minute",
        "user_footprint_minute_mv",
    ]
    assert all("IF NOT EXISTS" in s for s in statements)  # re-runnable
    assert SQL_DIR.name == "sql"
