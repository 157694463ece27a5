"""Data retention in ClickHouse: the month partitions to drop and the rows to delete.

The policy and the steps are ``footprint/retention.py``'s; this module plans and applies them on
ClickHouse (``ALTER TABLE … DROP PARTITION``, ``ALTER TABLE … DELETE`` mutations, which every
version from 18.16 runs, waited for so a run's end means the rows are gone).
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from footprint.retention import Policy, Step, _deletes, _drop_before, cutoff, months_past

if TYPE_CHECKING:
    from footprint.clickhouse import ClickHouse

__all__ = ["apply_clickhouse", "plan_clickhouse", "wait_for_mutations"]

log = logging.getLogger(__name__)

MUTATION_TIMEOUT = 300.0  # how long a run waits for a ClickHouse delete to be applied

RAW, ROLLUP = "user_footprint", "user_footprint_minute"
_TIME = {RAW: "footprint_time", ROLLUP: "minute"}


def _ch_months(client: ClickHouse, table: str) -> list[date]:
    rows = client.execute(
        "SELECT DISTINCT partition FROM system.parts "
        "WHERE database = currentDatabase() AND table = %(t)s AND active",
        {"t": table},
    )
    return [date(int(p[:4]), int(p[4:6]), 1) for (p,) in rows if len(p) == 6 and p.isdigit()]


def _ch_count(client: ClickHouse, table: str, condition: str, params: dict[str, Any]) -> int:
    return int(client.execute(f"SELECT count() FROM {table} WHERE {condition}", params)[0][0])


def plan_clickhouse(client: ClickHouse, policy: Policy, now: datetime) -> list[Step]:
    """What a run does in ClickHouse (rows counted now), in order."""
    steps: list[Step] = []
    for table, before, deletes in (
        (RAW, _drop_before(policy, now), _deletes(policy, now, "toDateTime(%({})s, 'UTC')")),
        (ROLLUP, cutoff(policy.rollup_days, now), []),
    ):
        dropped = months_past(_ch_months(client, table), before)
        for month in dropped:
            key = f"{month:%Y%m}"
            rows = _ch_count(client, table, f"toYYYYMM({_TIME[table]}) = %(m)s", {"m": int(key)})
            steps.append(
                Step(
                    "clickhouse",
                    "drop partition",
                    f"{table} {key}",
                    f"{month:%Y-%m}",
                    rows,
                    f"ALTER TABLE {table} DROP PARTITION {int(key)}",
                )
            )
        if table == ROLLUP and before is not None:
            deletes = [
                ("minute < toDateTime(%(tr)s, 'UTC')", {"tr": before}, f"before {before:%Y-%m-%d}")
            ]
        scope = f" AND toYYYYMM({_TIME[table]}) > {dropped[-1]:%Y%m}" if dropped else ""
        for condition, params, what in deletes:
            rows = _ch_count(client, table, condition + scope, params)
            if rows:
                sql = f"ALTER TABLE {table} DELETE WHERE {condition}"
                steps.append(Step("clickhouse", "delete", table, what, rows, sql, params))
    return steps


def wait_for_mutations(client: ClickHouse, table: str, timeout: float = MUTATION_TIMEOUT) -> None:
    """Wait until ClickHouse has applied the table's mutations (they run in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        pending = client.execute(
            "SELECT count() FROM system.mutations "
            "WHERE database = currentDatabase() AND table = %(t)s AND is_done = 0",
            {"t": table},
        )[0][0]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"ClickHouse has not applied the deletes of {table} in {timeout:g} s"
            )
        time.sleep(0.1)


def apply_clickhouse(client: ClickHouse, steps: list[Step]) -> None:
    """Run the steps; deletes are waited for, so the run's end means the rows are gone."""
    for step in steps:
        client.execute(step.sql, step.params or None)
        if step.action == "delete":
            wait_for_mutations(client, step.target)
        log.info("retention: %s", step)
