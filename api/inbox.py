"""Inbox queries on PostgreSQL, always scoped to one user."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from footprint.inbox import NOTIFICATION_COLUMNS, as_dict

__all__ = ["after", "mark_all_read", "mark_read", "newest_id", "page", "unread", "unread_count"]

MAX_BACKLOG = 1000


async def page(
    pool: AsyncConnectionPool, user: str, *, unread_only: bool, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    """Newest first, ``limit`` at most, older than ``before_id`` when given."""
    sql = f'SELECT {NOTIFICATION_COLUMNS} FROM user_notifications WHERE "user" = %s'
    params: list[Any] = [user]
    if unread_only:
        sql += " AND NOT is_read"
    if before_id is not None:
        sql += " AND id < %s"
        params.append(before_id)
    sql += " ORDER BY id DESC LIMIT %s"
    params.append(limit)
    async with pool.connection() as conn:
        rows = await (await conn.execute(sql, params)).fetchall()
    return [as_dict(r) for r in rows]


async def unread(pool: AsyncConnectionPool, user: str) -> list[dict[str, Any]]:
    """Every unread notification, oldest first (what a new socket is sent)."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                f"SELECT {NOTIFICATION_COLUMNS} FROM user_notifications "
                'WHERE "user" = %s AND NOT is_read ORDER BY id LIMIT %s',
                (user, MAX_BACKLOG),
            )
        ).fetchall()
    return [as_dict(r) for r in rows]


async def after(pool: AsyncConnectionPool, user: str, last_id: int) -> list[dict[str, Any]]:
    """Every notification after ``last_id``, oldest first (what a reconnecting socket missed)."""
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                f"SELECT {NOTIFICATION_COLUMNS} FROM user_notifications "
                'WHERE "user" = %s AND id > %s ORDER BY id LIMIT %s',
                (user, last_id, MAX_BACKLOG),
            )
        ).fetchall()
    return [as_dict(r) for r in rows]


async def unread_count(pool: AsyncConnectionPool, user: str) -> int:
    """How many of the user's notifications are unread."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                'SELECT count(*) FROM user_notifications WHERE "user" = %s AND NOT is_read', (user,)
            )
        ).fetchone()
    return int(row[0]) if row else 0


async def mark_read(pool: AsyncConnectionPool, user: str, notification_id: int) -> bool:
    """Mark one of the user's notifications read; False if the user has no such notification."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                'UPDATE user_notifications SET is_read = true WHERE id = %s AND "user" = %s '
                "RETURNING id",
                (notification_id, user),
            )
        ).fetchone()
    return row is not None


async def mark_all_read(pool: AsyncConnectionPool, user: str) -> int:
    """Mark all the user's notifications read; return how many changed."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            'UPDATE user_notifications SET is_read = true WHERE "user" = %s AND NOT is_read',
            (user,),
        )
        return cur.rowcount


async def newest_id(pool: AsyncConnectionPool, user: str) -> int:
    """The id of the user's newest notification, read or not (0 if none)."""
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                'SELECT coalesce(max(id), 0) FROM user_notifications WHERE "user" = %s', (user,)
            )
        ).fetchone()
    return int(row[0]) if row else 0
