"""Goals and funnels of a site, stored in PostgreSQL (``sql/postgres/007_goals.sql``).

``GoalStore(pool)`` reads and writes them for the routes (``api/routes/goals.py``,
``api/routes/funnels.py``) and gives the query API a site's goals as ``api.query.goals.Goal``.
Creating a goal is idempotent as Plausible's ``PUT /api/v1/sites/goals``: the goal of that event
name or page path is found if it is there. A funnel is stored under its name; putting it again
replaces its steps. A goal that is a step of a funnel is not deleted (``GoalInUse``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.query.goals import GOAL_PAGE, Goal
from api.sites import RegistryUnavailable, UnknownSite

__all__ = [
    "GoalConflict",
    "GoalInUse",
    "GoalStore",
    "StoredFunnel",
    "StoredGoal",
    "UnknownFunnel",
    "UnknownGoal",
]

MIN_STEPS, MAX_STEPS = 2, 8


class UnknownGoal(Exception):
    """No such goal of the site."""


class UnknownFunnel(Exception):
    """No such funnel of the site."""


class GoalConflict(Exception):
    """Another goal of the site has this display name."""


class GoalInUse(Exception):
    """The goal is a step of these funnels (their names)."""


@dataclass(frozen=True)
class StoredGoal:
    """A configured goal: exactly one of ``event_name`` and ``page_path``."""

    id: int
    display_name: str
    event_name: str | None
    page_path: str | None

    @property
    def goal_type(self) -> Literal["event", "page"]:
        return "page" if self.page_path is not None else "event"

    def as_goal(self) -> Goal:
        """The goal as the query API matches it, named by its display name."""
        return Goal.stored(self.display_name, self.event_name, self.page_path)

    def answer(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "goal_type": self.goal_type,
            "event_name": self.event_name,
            "page_path": self.page_path,
        }


@dataclass(frozen=True)
class StoredFunnel:
    """A funnel: its name and its goals in order."""

    id: int
    name: str
    steps: tuple[StoredGoal, ...]

    def answer(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "steps": [g.answer() for g in self.steps]}


_GOAL_COLUMNS = "g.id, g.display_name, g.event_name, g.page_path"


def _dicts(conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncCursor[dict[str, Any]]:
    # A cursor of its own: the pool's connections keep their tuple rows for other callers.
    return conn.cursor(row_factory=dict_row)


def _goal(row: dict[str, Any]) -> StoredGoal:
    return StoredGoal(row["id"], row["display_name"], row["event_name"], row["page_path"])


class GoalStore:
    """The goals and funnels tables, one connection of the pool per call."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout, OSError) as e:
            raise RegistryUnavailable(f"postgres unavailable: {e}") from e

    # --- goals ---
    async def goals(self, site: str) -> list[StoredGoal]:
        """The site's goals, oldest first."""
        async with self._connection() as conn:
            cur = await _dicts(conn).execute(
                f"SELECT {_GOAL_COLUMNS} FROM goals g WHERE g.site = %s ORDER BY g.id", [site]
            )
            return [_goal(r) for r in await cur.fetchall()]

    async def add_goal(
        self, site: str, event_name: str | None, page_path: str | None, display_name: str | None
    ) -> tuple[StoredGoal, bool]:
        """The site's goal of this event name or page path, made if new: (goal, made)."""
        name = display_name or (f"{GOAL_PAGE}{page_path}" if page_path else str(event_name))
        kind = "page_path" if page_path is not None else "event_name"
        value = page_path if page_path is not None else event_name
        async with self._connection() as conn, conn.transaction():
            # Locking the site serialises concurrent PUTs: the second finds the first's goal.
            if not await self._site_exists(conn, site, lock=True):
                raise UnknownSite(site)
            cur = await _dicts(conn).execute(
                f"SELECT {_GOAL_COLUMNS} FROM goals g WHERE g.site = %s AND g.{kind} = %s",
                [site, value],
            )
            found = await cur.fetchone()
            if found is not None:
                return _goal(found), False
            try:
                async with conn.transaction():
                    cur = await _dicts(conn).execute(
                        "INSERT INTO goals AS g (site, event_name, page_path, display_name)"
                        f" VALUES (%s, %s, %s, %s) RETURNING {_GOAL_COLUMNS}",
                        [site, event_name, page_path, name],
                    )
            except psycopg.errors.UniqueViolation:
                raise GoalConflict(name) from None
            made = await cur.fetchone()
        assert made is not None
        return _goal(made), True

    async def delete_goal(self, site: str, goal_id: int) -> None:
        """Delete a goal of the site; UnknownGoal, or GoalInUse naming the funnels it is in."""
        async with self._connection() as conn, conn.transaction():
            await self._site_exists(conn, site, lock=True)  # no funnel takes it up meanwhile
            cur = await _dicts(conn).execute(
                "SELECT DISTINCT f.name FROM funnel_steps s JOIN funnels f ON f.id = s.funnel_id"
                " WHERE s.goal_id = %s AND f.site = %s ORDER BY f.name",
                [goal_id, site],
            )
            funnels = [r["name"] for r in await cur.fetchall()]
            if funnels:
                raise GoalInUse(funnels)
            cur = await _dicts(conn).execute(
                "DELETE FROM goals WHERE site = %s AND id = %s", [site, goal_id]
            )
            if not cur.rowcount:
                raise UnknownGoal(goal_id)

    # --- funnels ---
    async def funnels(self, site: str, funnel_id: int | None = None) -> list[StoredFunnel]:
        """The site's funnels (or the one asked), oldest first, with their goals in order."""
        only = "" if funnel_id is None else " AND f.id = %s"
        params: list[Any] = [site] if funnel_id is None else [site, funnel_id]
        async with self._connection() as conn:
            cur = await _dicts(conn).execute(
                f"SELECT f.id AS funnel_id, f.name, {_GOAL_COLUMNS} FROM funnels f"
                " JOIN funnel_steps s ON s.funnel_id = f.id JOIN goals g ON g.id = s.goal_id"
                f" WHERE f.site = %s{only} ORDER BY f.id, s.step",
                params,
            )
            rows = await cur.fetchall()
        found: dict[int, tuple[str, list[StoredGoal]]] = {}
        for row in rows:
            found.setdefault(row["funnel_id"], (row["name"], []))[1].append(_goal(row))
        return [StoredFunnel(i, name, tuple(goals)) for i, (name, goals) in found.items()]

    async def funnel(self, site: str, funnel_id: int) -> StoredFunnel:
        """One funnel of the site; UnknownFunnel if it has no such funnel."""
        found = await self.funnels(site, funnel_id)
        if not found:
            raise UnknownFunnel(funnel_id)
        return found[0]

    async def put_funnel(self, site: str, name: str, goal_ids: Sequence[int]) -> StoredFunnel:
        """Store the funnel ``name`` with these goals as its steps (replacing its steps)."""
        async with self._connection() as conn, conn.transaction():
            # Locked as in add_goal: a goal deleted meanwhile cannot become a step.
            if not await self._site_exists(conn, site, lock=True):
                raise UnknownSite(site)
            cur = await _dicts(conn).execute(
                "SELECT id FROM goals WHERE site = %s AND id = ANY(%s)", [site, list(goal_ids)]
            )
            known = {r["id"] for r in await cur.fetchall()}
            missing = [i for i in goal_ids if i not in known]
            if missing:
                raise UnknownGoal(missing[0])
            cur = await _dicts(conn).execute(
                "INSERT INTO funnels (site, name) VALUES (%s, %s)"
                " ON CONFLICT (site, name) DO UPDATE SET name = excluded.name RETURNING id",
                [site, name],
            )
            row = await cur.fetchone()
            assert row is not None
            funnel_id = int(row["id"])
            await _dicts(conn).execute("DELETE FROM funnel_steps WHERE funnel_id = %s", [funnel_id])
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO funnel_steps (funnel_id, step, goal_id) VALUES (%s, %s, %s)",
                    [(funnel_id, step, goal) for step, goal in enumerate(goal_ids, 1)],
                )
        return await self.funnel(site, funnel_id)

    async def delete_funnel(self, site: str, funnel_id: int) -> None:
        """Delete a funnel of the site (its goals stay); UnknownFunnel if there is none."""
        async with self._connection() as conn:
            cur = await _dicts(conn).execute(
                "DELETE FROM funnels WHERE site = %s AND id = %s", [site, funnel_id]
            )
            if not cur.rowcount:
                raise UnknownFunnel(funnel_id)

    @staticmethod
    async def _site_exists(
        conn: psycopg.AsyncConnection[Any], site: str, *, lock: bool = False
    ) -> bool:
        lock_clause = " FOR UPDATE" if lock else ""
        cur = await _dicts(conn).execute(
            f"SELECT 1 FROM sites WHERE domain = %s{lock_clause}", [site]
        )
        return await cur.fetchone() is not None
