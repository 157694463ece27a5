"""One person's data across the stores: export it, or delete it (GDPR-style requests).

A user id appears in the raw footprints (PostgreSQL, ClickHouse), the community tables, the
notifications and the Redis inboxes. What deletion does, per table:

* ``user_footprint`` (both stores): the user's rows go. Rollups (``user_footprint_minute``)
  and live windows hold no user ids and stay.
* ``users``, ``follows`` (either side), ``penalties`` the user received: deleted.
* ``posts`` by the user go with every comment on them; the user's ``comments`` go, and others'
  replies to them stay as top-level comments of their post.
* ``penalties`` the user gave as a moderator stay (the penalised user's record), their
  moderator becoming ``[deleted]`` (no real id can be: ids allow no brackets).
* ``user_notifications`` the user received or that name the user (actor, follow, penalty)
  go, and the same ids leave the recipients' Redis inboxes; the user's inbox key goes.

Not reached: events still on the Kafka topics (gone with the topics' retention) and events in
flight, which may store a footprint or notification after the deletion: run it again later.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from footprint.clickhouse import ClickHouse
from footprint.keys import inbox_key
from footprint.retention_clickhouse import wait_for_mutations

__all__ = ["DELETED_MODERATOR", "delete_user", "export_user"]

DELETED_MODERATOR = "[deleted]"

# Notifications naming the user: received, or about the user (payloads of schemas/community.py).
_NAMING = (
    "\"user\" = %(u)s OR payload->>'actor_id' = %(u)s OR payload->>'user_id' = %(u)s "
    "OR payload->>'followed_id' = %(u)s"
)
_EXPORT: dict[str, str] = {
    "user": "SELECT id, created_at FROM users WHERE id = %(u)s",
    "footprints": "SELECT * FROM user_footprint WHERE user_id = %(u)s ORDER BY footprint_time, id",
    "following": "SELECT followee_id, created_at FROM follows WHERE follower_id = %(u)s",
    "followers": "SELECT follower_id, created_at FROM follows WHERE followee_id = %(u)s",
    "posts": "SELECT * FROM posts WHERE author_id = %(u)s ORDER BY id",
    "comments": "SELECT * FROM comments WHERE author_id = %(u)s ORDER BY id",
    "penalties_received": "SELECT * FROM penalties WHERE user_id = %(u)s ORDER BY id",
    "penalties_given": "SELECT * FROM penalties WHERE moderator_id = %(u)s ORDER BY id",
    "notifications": 'SELECT * FROM user_notifications WHERE "user" = %(u)s ORDER BY id',
}
_DOOMED_COMMENTS = (
    "SELECT id FROM comments WHERE author_id = %(u)s "
    "OR post_id IN (SELECT id FROM posts WHERE author_id = %(u)s)"
)
# In this order, in one transaction: children before the rows they reference.
_DELETE: list[tuple[str, str]] = [
    ("user_footprint", "DELETE FROM user_footprint WHERE user_id = %(u)s"),
    ("user_notifications", f'DELETE FROM user_notifications WHERE {_NAMING} RETURNING id, "user"'),
    (
        "comments (replies kept)",
        f"UPDATE comments SET parent_comment_id = NULL WHERE parent_comment_id IN "
        f"({_DOOMED_COMMENTS}) AND id NOT IN ({_DOOMED_COMMENTS})",
    ),
    ("comments", f"DELETE FROM comments WHERE id IN ({_DOOMED_COMMENTS})"),
    ("posts", "DELETE FROM posts WHERE author_id = %(u)s"),
    ("follows", "DELETE FROM follows WHERE follower_id = %(u)s OR followee_id = %(u)s"),
    ("penalties", "DELETE FROM penalties WHERE user_id = %(u)s"),
    (
        "penalties (moderator [deleted])",
        "UPDATE penalties SET moderator_id = %(d)s WHERE moderator_id = %(u)s",
    ),
    ("users", "DELETE FROM users WHERE id = %(u)s"),
]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


async def export_user(pool: AsyncConnectionPool, user_id: str) -> dict[str, Any] | None:
    """Everything PostgreSQL, the system of record, holds about ``user_id``; None: nothing."""
    out: dict[str, Any] = {"user_id": user_id}
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        for name, sql in _EXPORT.items():
            await cur.execute(sql, {"u": user_id})
            out[name] = _rows(await cur.fetchall())
    out["user"] = out["user"][0] if out["user"] else None
    if not any(out[k] for k in _EXPORT):
        return None
    return out


def _delete_clickhouse(client: ClickHouse, user_id: str) -> int:
    found = client.execute(
        "SELECT count() FROM user_footprint WHERE user_id = %(u)s", {"u": user_id}
    )[0][0]
    if found:
        # A mutation: every version from 18.16 has it (the lightweight DELETE is 22.8+). It runs
        # in the background; the answer waits for it, so a 200 means the rows are gone.
        client.execute("ALTER TABLE user_footprint DELETE WHERE user_id = %(u)s", {"u": user_id})
        wait_for_mutations(client, "user_footprint")
    return int(found)


async def delete_user(
    pool: AsyncConnectionPool, clickhouse: ClickHouse, redis: aioredis.Redis, user_id: str
) -> dict[str, dict[str, int]]:
    """Delete ``user_id``'s data everywhere; returns what went, per store and table.

    Ordered so that a store failing part-way leaves what a retry needs: ClickHouse first (its
    mutation is idempotent), then PostgreSQL in one transaction that commits only once Redis
    has dropped the deleted notifications (their ids come from PostgreSQL's rows).
    """
    rows = await asyncio.to_thread(_delete_clickhouse, clickhouse, user_id)
    postgres: dict[str, int] = {}
    params = {"u": user_id, "d": DELETED_MODERATOR}
    async with pool.connection() as conn, conn.transaction():
        given = "SELECT 1 FROM penalties WHERE moderator_id = %(u)s"
        if await (await conn.execute(given, params)).fetchone():
            await conn.execute(
                "INSERT INTO users (id) VALUES (%(d)s) ON CONFLICT DO NOTHING", params
            )
        notified: list[tuple[int, str]] = []
        for table, sql in _DELETE:
            cur = await conn.execute(sql, params)
            postgres[table] = cur.rowcount
            if table == "user_notifications":
                notified = [(r[0], r[1]) for r in await cur.fetchall()]
        pipe = redis.pipeline(transaction=False)
        pipe.delete(inbox_key(user_id))
        for nid, recipient in notified:
            if recipient != user_id:
                pipe.zremrangebyscore(inbox_key(recipient), nid, nid)
        answers = await pipe.execute()
    return {
        "postgres": postgres,
        "clickhouse": {"user_footprint": rows},
        "redis": {"inbox": int(answers[0]), "inbox entries of others": int(sum(answers[1:]))},
    }
