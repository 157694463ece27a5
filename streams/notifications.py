"""Notifications: resolve recipients on the social graph, store once, fan out live.

Recipients are resolved by SQL (``INSERT … SELECT … ON CONFLICT DO NOTHING``) so a post by an
author with many followers is one statement. A replayed event creates no second row; its rows
are re-published anyway, and clients drop what they have already seen by id.

Failures are classified as the footprint sinks classify them (``streams/sinks/postgres.py``,
``streams/sinks/redis.py``): ``StoreUnavailable`` is retried, ``StoreRefused`` makes the agent
split the batch until the refused events are alone and dead-letter them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
import redis.asyncio as aioredis
from psycopg.types.json import Jsonb
from redis.exceptions import RedisError

from footprint.inbox import NOTIFICATION_COLUMNS, as_dict, deliveries, delivery
from footprint.keys import NOTIFICATIONS_CHANNEL, inbox_key
from schemas.community import CommunityEvent
from streams.sinks.base import StoreRefused, StoreUnavailable
from streams.sinks.postgres import classify as postgres_failure
from streams.sinks.redis import classify as redis_failure

__all__ = ["NotificationStore", "RECIPIENTS"]

# Who is notified of each event type: never the actor.
RECIPIENTS: dict[str, str] = {
    "create_post": (
        "SELECT follower_id FROM follows "
        "WHERE followee_id = %(actor_id)s AND follower_id <> %(actor_id)s"
    ),
    "create_parent_comment": (
        "SELECT author_id FROM posts WHERE id = %(post_id)s AND author_id <> %(actor_id)s"
    ),
    "create_child_comment": (
        "SELECT author_id FROM comments "
        "WHERE id = %(parent_comment_id)s AND author_id <> %(actor_id)s"
    ),
    "follow_user": "SELECT %(followed_id)s::text WHERE %(followed_id)s <> %(actor_id)s",
    "penalty_user": "SELECT %(user_id)s::text WHERE %(user_id)s <> %(actor_id)s",
}

_INSERT = (
    'INSERT INTO user_notifications (event_id, "user", noti_type, payload) '
    "SELECT %(event_id)s, r.uid, %(type)s, %(payload)s FROM ({recipients}) AS r(uid) "
    'ON CONFLICT (event_id, "user") DO NOTHING'
)
_ROWS = (
    f"SELECT {NOTIFICATION_COLUMNS} FROM user_notifications WHERE event_id = ANY(%s) ORDER BY id"
)
_UNREAD = (
    'SELECT "user", count(*) FROM user_notifications '
    'WHERE NOT is_read AND "user" = ANY(%s) GROUP BY "user"'
)
# Per key: add the notification (score = its id), keep the newest ARGV[1], expire after ARGV[2].
_INBOX_SCRIPT = """
local size, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[1 + 2 * i], ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYRANK', key, 0, -size - 1)
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""
FAN_OUT_CHUNK = 250
_PURGE = "DELETE FROM user_notifications WHERE created_time < now() - make_interval(secs => %s)"


class NotificationStore:
    """PostgreSQL rows (the truth), Redis recent lists and live deliveries."""

    def __init__(
        self,
        postgres_url: str,
        redis_url: str,
        *,
        inbox_size: int = 100,
        retention_days: float = 7.0,
    ) -> None:
        self.postgres_url = postgres_url
        self.redis_url = redis_url
        self.inbox_size = inbox_size
        self.retention_seconds = retention_days * 86_400
        self._conn: psycopg.AsyncConnection | None = None
        self._redis: aioredis.Redis | None = None

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.postgres_url, connect_timeout=5
                )
            except psycopg.Error as e:
                raise StoreUnavailable("postgres", f"cannot connect: {e}") from e
        return self._conn

    async def store(
        self, events: Sequence[CommunityEvent]
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Insert one row per (event, recipient); return the batch's rows and unread counts."""
        conn = await self._connection()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                by_type: dict[str, list[dict[str, Any]]] = {}
                for event in events:
                    payload = event.model_dump(mode="json")
                    by_type.setdefault(event.type, []).append(
                        {**payload, "payload": Jsonb(payload)}
                    )
                for event_type, params in by_type.items():
                    # executemany pipelines the statements: one round trip per event type.
                    await cur.executemany(_INSERT.format(recipients=RECIPIENTS[event_type]), params)
                await cur.execute(_ROWS, ([e.event_id for e in events],))
                rows = [as_dict(r) for r in await cur.fetchall()]
                users = sorted({r["user"] for r in rows})
                await cur.execute(_UNREAD, (users,))
                unread = {u: int(n) for u, n in await cur.fetchall()}
        except psycopg.Error as e:
            error = postgres_failure(e)
            if not isinstance(error, StoreRefused):  # after a refusal the session is usable
                await self.close()
            raise error from e
        return rows, unread

    async def fan_out(self, rows: Sequence[dict[str, Any]], unread: dict[str, int]) -> None:
        """Recent list per user (bounded, expiring) and one live delivery per notification.

        Both go in chunks: a script updates a chunk's recent lists in one command, and one
        message carries a chunk's deliveries (a post to 10,000 followers is 40 commands).
        """
        if not rows:
            return
        if self._redis is None:
            self._redis = aioredis.from_url(
                self.redis_url, socket_timeout=5, socket_connect_timeout=5
            )
        pipe = self._redis.pipeline(transaction=False)
        ttl = int(self.retention_seconds)
        for i in range(0, len(rows), FAN_OUT_CHUNK):
            chunk = rows[i : i + FAN_OUT_CHUNK]
            members = [m for row in chunk for m in (row["id"], delivery(row, row["user"], 0))]
            pipe.eval(
                _INBOX_SCRIPT,
                len(chunk),
                *(inbox_key(row["user"]) for row in chunk),
                self.inbox_size,
                ttl,
                *members,
            )
        for i in range(0, len(rows), FAN_OUT_CHUNK):
            chunk = rows[i : i + FAN_OUT_CHUNK]
            pipe.publish(
                NOTIFICATIONS_CHANNEL,
                deliveries([(row, row["user"], unread.get(row["user"], 0)) for row in chunk]),
            )
        try:
            await pipe.execute()
        except RedisError as e:
            raise redis_failure(e) from e

    async def purge(self) -> int:
        """Delete notifications older than the retention; return how many."""
        conn = await self._connection()
        try:
            async with conn.transaction():
                cur = await conn.execute(_PURGE, (self.retention_seconds,))
                return cur.rowcount
        except psycopg.Error as e:
            await self.close()
            raise postgres_failure(e) from e

    async def close(self) -> None:
        """Close both connections."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.shield(conn.close())
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()
