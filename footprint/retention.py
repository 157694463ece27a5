"""Data retention: raw footprints and rollups past their time are removed, month partitions first.

What goes (``FOOTPRINT_RAW_RETENTION_DAYS``, a site's own ``sites.raw_retention_days``,
``FOOTPRINT_ROLLUP_RETENTION_DAYS``; 0 keeps for ever), counted in whole UTC days: with 30, a
footprint of 31 days ago at any hour goes, one of 30 days ago stays until tomorrow.

How: a month whose every row is past the longest retention that applies to it is dropped as a
partition (PostgreSQL ``DROP TABLE`` of ``user_footprint_pYYYYMM``, ClickHouse
``ALTER TABLE … DROP PARTITION``): no row-by-row delete, no bloat. What is left past a retention
(the month the limit falls in, a site keeping less) is deleted by ``DELETE`` (PostgreSQL) or an
``ALTER TABLE … DELETE`` mutation (ClickHouse, every version from 18.16), only when such rows
exist, so an hourly run costs a count most of the time. PostgreSQL also gets the coming months'
partitions made (``footprint_ensure_partitions``, sql/postgres/006).

The ClickHouse half is ``footprint/retention_clickhouse.py``.

Run by ``footprint retention run [--dry-run]`` and by the worker's leader on a timer
(``streams/retention.py``). Functions are synchronous: call them in a thread from async code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from footprint.settings import Settings

__all__ = [
    "MONTHS_AHEAD",
    "Policy",
    "Step",
    "cutoff",
    "months_past",
    "plan_postgres",
    "run",
]

log = logging.getLogger(__name__)

MONTHS_AHEAD = 2  # partitions made ahead of this month (sql/postgres/006 makes as many)


@dataclass(frozen=True)
class Policy:
    """How long data is kept, in whole UTC days; 0 keeps it for ever."""

    raw_days: int
    rollup_days: int = 0
    site_days: Mapping[str, int] = field(default_factory=dict)  # sites keeping their own time


def cutoff(days: int, now: datetime) -> datetime | None:
    """The instant before which data kept ``days`` whole UTC days goes (None: kept for ever)."""
    if days <= 0:
        return None
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=days)


def _month_end(month: date) -> datetime:
    first = datetime(month.year, month.month, 1, tzinfo=UTC)
    return (first + timedelta(days=32)).replace(day=1)


def months_past(months: list[date], before: datetime | None) -> list[date]:
    """The months (first days) wholly before ``before``: the partitions to drop."""
    if before is None:
        return []
    return sorted(m for m in months if _month_end(m) <= before)


def _drop_before(policy: Policy, now: datetime) -> datetime | None:
    # A partition holds every site: it goes only when past the longest retention of all.
    cutoffs = [cutoff(policy.raw_days, now)] + [cutoff(d, now) for d in policy.site_days.values()]
    if any(c is None for c in cutoffs):
        return None
    return min(c for c in cutoffs if c is not None)


@dataclass
class Step:
    """One thing a run does: drop a partition, delete rows or make partitions."""

    store: Literal["postgres", "clickhouse"]
    action: Literal["drop partition", "delete", "make partitions"]
    target: str
    what: str
    rows: int
    sql: str = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return f"{self.store}: {self.action} {self.target}: {self.rows} rows ({self.what})"


def _deletes(
    policy: Policy, now: datetime, at: str = "%({})s"
) -> list[tuple[str, dict[str, Any], str]]:
    """(condition, params, description) of the raw rows past their retention.

    ``at`` writes a time parameter into SQL (ClickHouse 18.16 compares a DateTime column only
    with a DateTime, not with a string).
    """
    out = []
    for i, (site, days) in enumerate(sorted(policy.site_days.items())):
        before = cutoff(days, now)
        assert before is not None
        out.append(
            (
                f"site = %(s{i})s AND footprint_time < {at.format(f't{i}')}",
                {f"s{i}": site, f"t{i}": before},
                f"site {site!r} before {before:%Y-%m-%d}",
            )
        )
    before = cutoff(policy.raw_days, now)
    if before is not None:
        sites = {f"o{i}": site for i, site in enumerate(sorted(policy.site_days))}
        others = f"site NOT IN ({', '.join(f'%({k})s' for k in sites)}) AND " if sites else ""
        out.append(
            (
                f"{others}footprint_time < {at.format('tg')}",
                {**sites, "tg": before},
                f"{'other sites' if sites else 'every site'} before {before:%Y-%m-%d}",
            )
        )
    return out


# --- PostgreSQL ---------------------------------------------------------------------------


def site_days(conn: Any) -> dict[str, int]:
    """The sites keeping their raw footprints for their own time."""
    rows = conn.execute(
        "SELECT domain, raw_retention_days FROM sites WHERE raw_retention_days IS NOT NULL"
    ).fetchall()
    return {domain: days for domain, days in rows}


def _pg_months(conn: Any) -> list[date]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'user_footprint'::regclass"
    ).fetchall()
    names = [r[0] for r in rows if r[0].startswith("user_footprint_p")]
    return [date(int(n[-6:-2]), int(n[-2:]), 1) for n in names]


def plan_postgres(conn: Any, policy: Policy, now: datetime) -> list[Step]:
    """What a run does in PostgreSQL (rows counted now), in order."""
    steps = [
        Step(
            "postgres",
            "make partitions",
            "user_footprint",
            f"this month and {MONTHS_AHEAD} ahead, and those of rows in user_footprint_default",
            0,
            "SELECT footprint_ensure_partitions(%(ahead)s)",
            {"ahead": MONTHS_AHEAD},
        )
    ]
    dropped = months_past(_pg_months(conn), _drop_before(policy, now))
    for month in dropped:
        name = f"user_footprint_p{month:%Y%m}"
        rows = conn.execute(f"SELECT count(*) FROM ONLY {name}").fetchone()[0]
        steps.append(
            Step("postgres", "drop partition", name, f"{month:%Y-%m}", rows, f"DROP TABLE {name}")
        )
    # Rows of the partitions dropped first are not counted again.
    scope = f" AND footprint_time >= '{_month_end(dropped[-1]).isoformat()}'" if dropped else ""
    for condition, params, what in _deletes(policy, now):
        count = f"SELECT count(*) FROM user_footprint WHERE {condition}{scope}"
        rows = conn.execute(count, params).fetchone()[0]
        if rows:
            sql = f"DELETE FROM user_footprint WHERE {condition}"
            steps.append(Step("postgres", "delete", "user_footprint", what, rows, sql, params))
    return steps


def apply_postgres(conn: Any, steps: list[Step]) -> None:
    """Run the steps, each in its own transaction (a failure leaves the others done)."""
    for step in steps:
        with conn.transaction():
            cur = conn.execute(step.sql, step.params or None)
            if step.action == "make partitions":
                made = [r[0] for r in cur.fetchall()]
                step.what = ", ".join(made) if made else "none missing"
                step.rows = 0
        log.info("retention: %s", step)


# --- a run --------------------------------------------------------------------------------


def run(settings: Settings, *, dry_run: bool = False, now: datetime | None = None) -> list[Step]:
    """Apply the retention to PostgreSQL and ClickHouse (if configured); returns the steps."""
    import psycopg

    from footprint.clickhouse import connect
    from footprint.retention_clickhouse import apply_clickhouse, plan_clickhouse

    now = now or datetime.now(UTC)
    steps: list[Step] = []
    with psycopg.connect(settings.require("postgres_url"), autocommit=True) as conn:
        policy = Policy(
            settings.raw_retention_days, settings.rollup_retention_days, site_days(conn)
        )
        pg = plan_postgres(conn, policy, now)
        if not dry_run:
            # Partitions first: rows the default partition held move into their month, which
            # is then planned again (dropped whole rather than deleted row by row).
            apply_postgres(conn, pg[:1])
            pg = pg[:1] + plan_postgres(conn, policy, now)[1:]
            apply_postgres(conn, pg[1:])
        steps += pg
    if settings.clickhouse_url:
        client = connect(settings.clickhouse_url)
        try:
            ch = plan_clickhouse(client, policy, now)
            if not dry_run:
                apply_clickhouse(client, ch)
            steps += ch
        finally:
            client.close()
    return steps
